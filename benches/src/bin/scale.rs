//! Flat at a million users: the latency of login, authenticate and refresh as the number
//! of accounts grows, on a SQLite file and in PostgreSQL.
//!
//! ```sh
//! cargo run --release -p benches --bin scale -- --plot benches/plots/scale-latency.svg
//! cargo run --release -p benches --bin scale -- --sizes 1000,10000 --stores sqlite   # a quick check
//! cargo run --release -p benches --bin scale -- --replot /tmp/scale.log --plot /tmp/scale.svg
//! ```
//!
//! Each store is one database grown in steps (1k, 100k, then 1M accounts by default) and
//! measured at each size before it grows: a SQLite file in a temporary directory, as the
//! example server opens it, and a fresh PostgreSQL schema `scale_<uuid>` on
//! `AUTH_BENCH_DATABASE_URL` (default: the local server), dropped at the end. The store is
//! opened through its public API first, so that its own migrations make the tables; rows
//! are then written directly in the store's schema, without the service and without
//! hashing: on SQLite one prepared `INSERT` per table in one transaction, on PostgreSQL one
//! `COPY ... FROM STDIN` per table. Account `i` is `user<i>@example.com`, with one
//! precomputed minimal-cost password hash shared by every account, and one live session
//! whose refresh token is derived from `i` (so that its hash can be stored and the token
//! presented later; guessable by design, benchmarks only). Ids are UUIDv7 in the order of
//! `i`, as the service makes them. After seeding, SQLite checkpoints its write-ahead log
//! into the file; PostgreSQL runs `VACUUM ANALYZE` on the three tables and a `CHECKPOINT`,
//! so that neither the seeding's log nor its dirty pages are written out during the
//! measurement.
//!
//! At each size, after `--warmup` unrecorded calls, `--rounds` rounds of `--samples` calls
//! of each operation, the three taking turns one call at a time, sequentially (the latency
//! of one call, not throughput), on a multi-threaded Tokio runtime, through `AuthService`
//! with rate limits off and [`benches::MinimalCostHasher`], so that the store is what is
//! measured:
//!
//! - `login`: a random seeded account's email and password (a new session);
//! - `authenticate`: an access token of a random seeded account and its session (issued
//!   before the clock starts): reads the account and the session;
//! - `refresh`: the refresh token of a random seeded session (its latest one, if this run
//!   rotated it before), so every call presents a different token.
//!
//! Picks are uniform over all the accounts seeded so far, not the newest. Each round gives
//! a p50 and a p99 (nearest rank); a figure is the median round's, with the lowest and
//! highest round's. Output: a line per round (`scale_round ..`) and one per store, size
//! and operation (`scale store=.. accounts=.. op=.. rounds=.. samples=.. p50_us=..
//! p50_min_us=.. p50_max_us=.. p99_us=.. p99_min_us=.. p99_max_us=.. max_us=.. mean_us=..`),
//! the seeding times (`scale_seed ..`) and sizes (`scale_size ..`: the SQLite file, the
//! three PostgreSQL tables with their indexes), then Markdown tables with the ratio of the
//! largest size's figure to the smallest's. With `--plot FILE`, p50 and p99 against the
//! number of accounts (both axes logarithmic) are drawn as SVG by plotters; `--replot LOG`
//! draws it from the `scale store=..` lines of a saved output instead of measuring.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{
    AuthService, AuthStore, ClientInfo, Email, OpaqueToken, Password, PasswordHasher, RateLimits, SessionId,
    SigningKey, TokenHash, TokenKind, Tokens, User, UserId,
};
use auth_store_postgres::PostgresStore;
use auth_store_sqlite::{SqliteStore, rusqlite};
use benches::{MinimalCostHasher, PASSWORD, postgres_url};
use sqlx::Connection as _;
use time::OffsetDateTime;
use uuid::Uuid;

const USAGE: &str = "usage: scale [--sizes 1000,100000,1000000] [--stores sqlite,postgres] [--rounds 3] \
                     [--samples 2000] [--warmup 300] [--dir DIR] [--plot FILE.svg] [--replot LOG]";

type Service = AuthService<Arc<dyn AuthStore>>;

const OPS: [&str; 3] = ["login", "authenticate", "refresh"];

fn main() -> ExitCode {
    benches::exit_code(run(), USAGE)
}

struct Options {
    sizes: Vec<usize>,
    stores: Vec<String>,
    rounds: usize,
    samples: usize,
    warmup: usize,
    dir: Option<PathBuf>,
    plot: Option<PathBuf>,
    replot: Option<PathBuf>,
}

fn options() -> Result<Option<Options>, String> {
    let mut options = Options {
        sizes: vec![1_000, 100_000, 1_000_000],
        stores: vec!["sqlite".to_owned(), "postgres".to_owned()],
        rounds: 3,
        samples: 2_000,
        warmup: 300,
        dir: None,
        plot: None,
        replot: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, text: String| text.parse::<usize>().map_err(|e| format!("{name}: {e}"));
        match arg.as_str() {
            "--sizes" => {
                let text = value("--sizes")?;
                options.sizes = text
                    .split(',')
                    .map(|size| number("--sizes", size.replace('_', "")))
                    .collect::<Result<_, _>>()?;
            }
            "--stores" => options.stores = value("--stores")?.split(',').map(str::to_owned).collect(),
            "--rounds" => options.rounds = number("--rounds", value("--rounds")?)?.max(1),
            "--samples" => options.samples = number("--samples", value("--samples")?)?.max(1),
            "--warmup" => options.warmup = number("--warmup", value("--warmup")?)?,
            "--dir" => options.dir = Some(PathBuf::from(value("--dir")?)),
            "--plot" => options.plot = Some(PathBuf::from(value("--plot")?)),
            "--replot" => options.replot = Some(PathBuf::from(value("--replot")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.sizes.is_empty() || options.sizes.contains(&0) || !options.sizes.is_sorted_by(|a, b| a < b) {
        return Err("--sizes: increasing numbers of accounts, none zero".to_owned());
    }
    if let Some(store) = options
        .stores
        .iter()
        .find(|s| !matches!(s.as_str(), "sqlite" | "postgres"))
    {
        return Err(format!("--stores: sqlite or postgres, not {store:?}"));
    }
    Ok(Some(options))
}

fn run() -> Result<(), String> {
    let Some(options) = options()? else {
        return Ok(());
    };
    if let Some(log) = &options.replot {
        let plot = options.plot.as_deref().ok_or("--replot needs --plot FILE")?;
        let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let figures = parse_figures(&text)?;
        return draw(plot, &figures);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    let started = Instant::now();
    let mut figures = Vec::new();
    for store in &options.stores {
        let measured = match store.as_str() {
            "sqlite" => runtime.block_on(sqlite(&options)),
            _ => runtime.block_on(postgres(&options)),
        }?;
        figures.extend(measured);
    }
    println!();
    print_tables(&figures);
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
    if let Some(plot) = &options.plot {
        draw(plot, &figures)?;
        eprintln!("plot written to {}", plot.display());
    }
    Ok(())
}

/// A statistic over the rounds: the median round's, the lowest and the highest (µs).
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// Of `values` (not empty): the median (the mean of the middle two for an even count).
    fn of(values: &mut [f64]) -> Self {
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Self {
            median,
            min: values.first().copied().unwrap_or(0.0),
            max: values.last().copied().unwrap_or(0.0),
        }
    }

    /// `median (min–max)`.
    fn text(self) -> String {
        format!("{} ({}–{})", us(self.median), us(self.min), us(self.max))
    }
}

/// One operation's timings on one store at one size.
#[derive(Debug, Clone)]
struct Figure {
    store: String,
    accounts: usize,
    op: String,
    rounds: usize,
    /// Calls per round.
    samples: usize,
    /// The p50 of each round, spread over the rounds.
    p50: Spread,
    /// The p99 of each round, spread over the rounds.
    p99: Spread,
    /// The slowest call of all rounds.
    max: f64,
    /// The mean of all calls.
    mean: f64,
}

/// The `q` quantile of `sorted` (nearest rank: the smallest sample at or above a fraction
/// `q` of them), in µs.
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let index = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(index.saturating_sub(1))
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

impl Figure {
    /// From each round's calls (not empty), printing a `scale_round` line per round.
    fn of(store: &str, accounts: usize, op: &str, rounds: &mut [Vec<Duration>]) -> Self {
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        let (mut max, mut total, mut calls) = (Duration::ZERO, Duration::ZERO, 0usize);
        for (round, samples) in rounds.iter_mut().enumerate() {
            samples.sort_unstable();
            p50.push(quantile(samples, 0.50));
            p99.push(quantile(samples, 0.99));
            max = max.max(samples.last().copied().unwrap_or_default());
            total += samples.iter().sum::<Duration>();
            calls += samples.len();
            println!(
                "scale_round store={store} accounts={accounts} op={op} round={} samples={} p50_us={:.1} p99_us={:.1} \
                 max_us={:.1}",
                round + 1,
                samples.len(),
                quantile(samples, 0.50),
                quantile(samples, 0.99),
                samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
            );
        }
        Self {
            store: store.to_owned(),
            accounts,
            op: op.to_owned(),
            rounds: rounds.len(),
            samples: rounds.first().map_or(0, Vec::len),
            p50: Spread::of(&mut p50),
            p99: Spread::of(&mut p99),
            max: max.as_secs_f64() * 1e6,
            mean: total.as_secs_f64() * 1e6 / calls.max(1) as f64,
        }
    }

    fn line(&self) -> String {
        format!(
            "scale store={} accounts={} op={} rounds={} samples={} p50_us={:.1} p50_min_us={:.1} p50_max_us={:.1} \
             p99_us={:.1} p99_min_us={:.1} p99_max_us={:.1} max_us={:.1} mean_us={:.1}",
            self.store,
            self.accounts,
            self.op,
            self.rounds,
            self.samples,
            self.p50.median,
            self.p50.min,
            self.p50.max,
            self.p99.median,
            self.p99.min,
            self.p99.max,
            self.max,
            self.mean
        )
    }
}

/// The `scale store=..` lines of a saved output.
fn parse_figures(text: &str) -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    for line in text.lines().filter(|line| line.starts_with("scale store=")) {
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.split_once('='))
            .collect();
        let text = |key: &str| fields.get(key).copied().ok_or(format!("no {key} in {line:?}"));
        let number = |key: &str| -> Result<f64, String> { text(key)?.parse().map_err(|e| format!("{key}: {e}")) };
        let count = |key: &str| -> Result<usize, String> { text(key)?.parse().map_err(|e| format!("{key}: {e}")) };
        let spread = |key: &str| -> Result<Spread, String> {
            Ok(Spread {
                median: number(&format!("{key}_us"))?,
                min: number(&format!("{key}_min_us"))?,
                max: number(&format!("{key}_max_us"))?,
            })
        };
        figures.push(Figure {
            store: text("store")?.to_owned(),
            accounts: count("accounts")?,
            op: text("op")?.to_owned(),
            rounds: count("rounds")?,
            samples: count("samples")?,
            p50: spread("p50")?,
            p99: spread("p99")?,
            max: number("max_us")?,
            mean: number("mean_us")?,
        });
    }
    if figures.is_empty() {
        return Err("no `scale store=..` lines".to_owned());
    }
    Ok(figures)
}

// ---------------------------------------------------------------------------------------
// The seeded rows: everything derived from the account's index and the run's start.

const SECOND_US: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * SECOND_US;
const SALT_USER: u64 = 0x7573_6572;
const SALT_SESSION: u64 = 0x7365_7373;
const SALT_TOKEN: u64 = 0x746f_6b65;

/// SplitMix64's output function: a bijection of `u64` that scatters neighbours.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator for the picks.
struct Rng(u64);

impl Rng {
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(1);
        ((u128::from(mix(self.0)) * n as u128) >> 64) as usize
    }
}

/// What every seeded row derives from.
#[derive(Clone)]
struct Seed {
    /// The run's start, µs since the Unix epoch.
    at_us: i64,
    /// One minimal-cost hash of [`PASSWORD`], every account's.
    password_hash: String,
}

/// One seeded account with its session.
struct Row {
    user_id: Uuid,
    email: String,
    user_created_us: i64,
    session_id: Uuid,
    session_created_us: i64,
    session_expires_us: i64,
}

impl Seed {
    fn new() -> Result<Self, String> {
        let hasher = MinimalCostHasher::new().map_err(|e| e.to_string())?;
        let hash = hasher.hash(&Password::new(PASSWORD)).map_err(|e| e.to_string())?;
        let at_us = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000)
            .map_err(|_| "the clock is out of range".to_owned())?;
        Ok(Self {
            at_us,
            password_hash: hash.as_str().to_owned(),
        })
    }

    /// Account `i` registered `90 days - i s` ago (a second apart, in the order of `i`), and
    /// signed in a day ago (sessions 10 µs apart): alive for the default idle timeout
    /// (7 days) and lifetime (30 days).
    fn row(&self, i: usize) -> Row {
        let index = i as i64;
        let user_created_us = self.at_us - 90 * DAY_US + index * SECOND_US;
        let session_created_us = self.at_us - DAY_US + index * 10;
        Row {
            user_id: uuid_v7(user_created_us, i as u64 ^ (SALT_USER << 32)),
            email: email(i),
            user_created_us,
            session_id: uuid_v7(session_created_us, i as u64 ^ (SALT_SESSION << 32)),
            session_created_us,
            session_expires_us: session_created_us + 30 * DAY_US,
        }
    }
}

fn email(i: usize) -> String {
    format!("user{i}@example.com")
}

/// A UUIDv7 at `at_us` whose random bits come from `key`.
fn uuid_v7(at_us: i64, key: u64) -> Uuid {
    let (a, b) = (mix(key << 1).to_le_bytes(), mix((key << 1) | 1).to_le_bytes());
    let bytes = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]];
    let millis = u64::try_from(at_us / 1000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

/// The refresh token seeded with session `i`: well-formed (`rt_` and 43 base64url
/// characters), derived from `i`.
fn refresh_token(i: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut token = String::with_capacity(46);
    token.push_str(TokenKind::Refresh.prefix());
    let (mut bits, mut left, mut word) = (0u64, 0u32, 0u64);
    for _ in 0..43 {
        if left < 6 {
            bits = mix(((i as u64) << 3 | word) ^ (SALT_TOKEN << 40));
            (left, word) = (64, word + 1);
        }
        token.push(char::from(ALPHABET[(bits & 63) as usize]));
        (bits, left) = (bits >> 6, left - 6);
    }
    token
}

/// The hash a store keeps for [`refresh_token`]`(i)`.
fn refresh_hash(i: usize) -> Result<TokenHash, String> {
    OpaqueToken::hash_presented(TokenKind::Refresh, &refresh_token(i))
        .ok_or_else(|| format!("seeded refresh token {i} is malformed"))
}

fn time_of(us: i64) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Measurement.

/// The service under measurement, and what the picks need.
struct Bench {
    store: &'static str,
    service: Service,
    client: ClientInfo,
    seed: Seed,
    /// The latest refresh token of each session this run rotated.
    rotated: HashMap<usize, String>,
}

impl Bench {
    fn new(store: &'static str, backend: Arc<dyn AuthStore>, seed: Seed) -> Result<Self, String> {
        let key = SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").map_err(|e| e.to_string())?;
        let tokens = Tokens::new(key, "https://auth.example.com", "bench-api");
        let service = AuthService::new(backend, tokens)
            .with_rate_limits(RateLimits::disabled())
            .with_hasher(MinimalCostHasher::new().map_err(|e| e.to_string())?);
        Ok(Self {
            store,
            service,
            client: ClientInfo::new(Some("scale benchmark"), Some([127, 0, 0, 1].into())),
            seed,
            rotated: HashMap::new(),
        })
    }

    async fn login(&self, i: usize) -> Result<Duration, String> {
        let email = email(i);
        let started = Instant::now();
        let outcome = self.service.login(&email, Password::new(PASSWORD), &self.client).await;
        let elapsed = started.elapsed();
        let login = outcome
            .and_then(auth_core::LoginOutcome::signed_in)
            .map_err(|e| format!("login of {email}: {e}"))?;
        if login.user.password_hash.as_ref().map(auth_core::HashedPassword::as_str) != Some(&self.seed.password_hash) {
            return Err(format!(
                "login of {email} rewrote the seeded hash: not the minimal-cost one"
            ));
        }
        Ok(elapsed)
    }

    async fn authenticate(&self, i: usize) -> Result<Duration, String> {
        let row = self.seed.row(i);
        let email = Email::parse(&row.email).map_err(|e| e.to_string())?;
        let user = User::existing(UserId::from_uuid(row.user_id), email, time_of(row.user_created_us)?);
        let token = self
            .service
            .tokens()
            .issue(&user, Some(SessionId::from_uuid(row.session_id)))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let outcome = self.service.authenticate(token.expose_secret()).await;
        let elapsed = started.elapsed();
        let me = outcome.map_err(|e| format!("authenticate of account {i}: {e}"))?;
        if me.user.id != user.id || me.session.map(|s| s.id) != Some(SessionId::from_uuid(row.session_id)) {
            return Err(format!("authenticate of account {i} found another account or session"));
        }
        Ok(elapsed)
    }

    async fn refresh(&mut self, i: usize) -> Result<Duration, String> {
        let presented = self.rotated.remove(&i).unwrap_or_else(|| refresh_token(i));
        let started = Instant::now();
        let outcome = self.service.refresh(&presented, &self.client).await;
        let elapsed = started.elapsed();
        let pair = outcome.map_err(|e| format!("refresh of session {i}: {e}"))?;
        self.rotated.insert(i, pair.refresh_token.expose_secret().to_owned());
        Ok(elapsed)
    }

    /// `warmup` unrecorded calls of each operation, then `rounds` rounds of `samples` calls
    /// of each, on accounts picked uniformly among the first `accounts`. The operations
    /// take turns, one call each, so that whatever else slows the machine meets all three.
    async fn measure(&mut self, accounts: usize, options: &Options) -> Result<Vec<Figure>, String> {
        let mut rng = Rng(0x5ca1e ^ accounts as u64);
        let started = Instant::now();
        for _ in 0..options.warmup {
            self.login(rng.below(accounts)).await?;
            self.authenticate(rng.below(accounts)).await?;
            self.refresh(rng.below(accounts)).await?;
        }
        let mut times: [Vec<Vec<Duration>>; 3] = std::array::from_fn(|_| Vec::new());
        for _ in 0..options.rounds {
            let mut round: [Vec<Duration>; 3] = std::array::from_fn(|_| Vec::with_capacity(options.samples));
            for _ in 0..options.samples {
                round[0].push(self.login(rng.below(accounts)).await?);
                round[1].push(self.authenticate(rng.below(accounts)).await?);
                round[2].push(self.refresh(rng.below(accounts)).await?);
            }
            for (all, one) in times.iter_mut().zip(round) {
                all.push(one);
            }
        }
        eprintln!(
            "{}: {accounts} accounts measured in {:.1} s",
            self.store,
            started.elapsed().as_secs_f64()
        );
        let figures: Vec<Figure> = OPS
            .iter()
            .zip(times.iter_mut())
            .map(|(op, rounds)| Figure::of(self.store, accounts, op, rounds))
            .collect();
        for figure in &figures {
            println!("{}", figure.line());
        }
        Ok(figures)
    }
}

/// Where the accounts are seeded.
enum Database<'a> {
    /// The SQLite file the store opened.
    Sqlite(PathBuf),
    /// The store's schema, and a connection of its own for seeding (the store's pool has a
    /// 10 s statement timeout).
    Postgres {
        conn: &'a mut sqlx::PgConnection,
        schema: String,
    },
}

impl Database<'_> {
    /// Seeds accounts `from..to`; returns the database's size in bytes.
    async fn grow(&mut self, seed: &Seed, from: usize, to: usize) -> Result<u64, String> {
        match self {
            Self::Sqlite(path) => {
                let (path, seed) = (path.clone(), seed.clone());
                tokio::task::spawn_blocking(move || sqlite_grow(&path, &seed, from, to))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("seeding SQLite: {e}"))
            }
            Self::Postgres { conn, schema } => postgres_grow(conn, schema, seed, from, to)
                .await
                .map_err(|e| format!("seeding PostgreSQL: {e}")),
        }
    }
}

/// Grows the database to each size in turn, measuring before the next growth.
async fn grow_and_measure(
    bench: &mut Bench,
    options: &Options,
    mut database: Database<'_>,
) -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    let mut seeded = 0;
    for &size in &options.sizes {
        let started = Instant::now();
        let bytes = database.grow(&bench.seed, seeded, size).await?;
        println!(
            "scale_seed store={} from={seeded} to={size} seconds={:.1}",
            bench.store,
            started.elapsed().as_secs_f64()
        );
        println!("scale_size store={} accounts={size} bytes={bytes}", bench.store);
        seeded = size;
        figures.extend(bench.measure(size, options).await?);
    }
    Ok(figures)
}

// ---------------------------------------------------------------------------------------
// SQLite.

async fn sqlite(options: &Options) -> Result<Vec<Figure>, String> {
    let dir = match &options.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temporary directory: {e}"))?;
    let path = dir.path().join("auth.db");
    let store = SqliteStore::open(&path)
        .await
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut bench = Bench::new("sqlite", Arc::new(store), Seed::new()?)?;
    grow_and_measure(&mut bench, options, Database::Sqlite(path)).await
}

/// Inserts accounts `from..to` with their sessions in one transaction on a connection of
/// its own, then checkpoints the write-ahead log into the file. Returns the file's size.
fn sqlite_grow(path: &Path, seed: &Seed, from: usize, to: usize) -> Result<u64, String> {
    let error = |e: rusqlite::Error| e.to_string();
    let mut conn = rusqlite::Connection::open(path).map_err(error)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(error)?;
    // This connection only: the seeding need not survive a power loss. The checkpoint
    // below runs with FULL again, so the file is synced before the measurement.
    conn.pragma_update(None, "synchronous", "OFF").map_err(error)?;
    // 256 MiB of page cache, so that one transaction of a million rows spills less.
    conn.pragma_update(None, "cache_size", -262_144).map_err(error)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(error)?;
    {
        let mut users = tx
            .prepare(
                "INSERT INTO auth_users (id, email, password_hash, is_active, email_verified_at, roles,
                                         token_version, created_at, updated_at, requires_second_factor)
                 VALUES (?1, ?2, ?3, 1, NULL, '', 0, ?4, ?4, 0)",
            )
            .map_err(error)?;
        let mut sessions = tx
            .prepare(
                "INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip,
                                            revoked_at, auth_methods, auth_time)
                 VALUES (?1, ?2, ?3, ?3, ?4, 'scale benchmark', '127.0.0.1', NULL, 'pwd', ?3)",
            )
            .map_err(error)?;
        let mut tokens = tx
            .prepare("INSERT INTO auth_refresh_tokens (hash, session_id, used_at) VALUES (?1, ?2, NULL)")
            .map_err(error)?;
        for i in from..to {
            let row = seed.row(i);
            let (user_id, session_id) = (
                row.user_id.hyphenated().to_string(),
                row.session_id.hyphenated().to_string(),
            );
            users
                .execute(rusqlite::params![
                    user_id,
                    row.email,
                    seed.password_hash,
                    row.user_created_us
                ])
                .map_err(error)?;
            sessions
                .execute(rusqlite::params![
                    session_id,
                    user_id,
                    row.session_created_us,
                    row.session_expires_us
                ])
                .map_err(error)?;
            tokens
                .execute(rusqlite::params![refresh_hash(i)?.as_bytes().as_slice(), session_id])
                .map_err(error)?;
        }
    }
    tx.commit().map_err(error)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(error)?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(error)?;
    if busy != 0 {
        return Err("the write-ahead log could not be checkpointed (a reader held it)".to_owned());
    }
    drop(conn);
    std::fs::metadata(path)
        .map(|meta| meta.len())
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// PostgreSQL.

async fn postgres(options: &Options) -> Result<Vec<Figure>, String> {
    let url = postgres_url();
    let schema = format!("scale_{}", Uuid::new_v4().simple());
    let store = PostgresStore::connect(&url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?
        .with_schema(&schema)
        .map_err(|e| e.to_string())?;
    let mut seeding = sqlx::PgConnection::connect(&url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    let measured = async {
        store.migrate().await.map_err(|e| format!("migrate {schema}: {e}"))?;
        let mut bench = Bench::new("postgres", Arc::new(store.clone()), Seed::new()?)?;
        let database = Database::Postgres {
            conn: &mut seeding,
            schema: schema.clone(),
        };
        grow_and_measure(&mut bench, options, database).await
    }
    .await;
    // Dropped whatever happened. Built from our own hex digits only: nothing to quote.
    let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&mut seeding)
        .await;
    let measured = measured?;
    dropped.map_err(|e| format!("DROP SCHEMA {schema}: {e}"))?;
    Ok(measured)
}

/// Copies accounts `from..to` with their sessions into `schema`, one `COPY` per table,
/// then vacuums, analyzes and checkpoints. Returns the three tables' size with indexes.
async fn postgres_grow(
    conn: &mut sqlx::PgConnection,
    schema: &str,
    seed: &Seed,
    from: usize,
    to: usize,
) -> Result<u64, String> {
    let hash = &seed.password_hash;
    copy(
        conn,
        &format!(
            "COPY \"{schema}\".users (id, email, password_hash, is_active, email_verified_at, roles, token_version, \
             created_at, updated_at, requires_second_factor) FROM STDIN"
        ),
        from..to,
        |i, out| {
            let row = seed.row(i);
            let created = pg_time(row.user_created_us)?;
            let _ = writeln!(
                out,
                "{}\t{}\t{hash}\tt\t\\N\t{{}}\t0\t{created}\t{created}\tf",
                row.user_id, row.email
            );
            Ok(())
        },
    )
    .await?;
    copy(
        conn,
        &format!(
            "COPY \"{schema}\".sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, \
             revoked_at, auth_methods, auth_time) FROM STDIN"
        ),
        from..to,
        |i, out| {
            let row = seed.row(i);
            let (created, expires) = (pg_time(row.session_created_us)?, pg_time(row.session_expires_us)?);
            let _ = writeln!(
                out,
                "{}\t{}\t{created}\t{created}\t{expires}\tscale benchmark\t127.0.0.1\t\\N\tpwd\t{created}",
                row.session_id, row.user_id
            );
            Ok(())
        },
    )
    .await?;
    copy(
        conn,
        &format!("COPY \"{schema}\".refresh_tokens (hash, session_id, used_at) FROM STDIN"),
        from..to,
        |i, out| {
            let row = seed.row(i);
            // bytea's hex input, its backslash escaped for COPY's text format.
            out.push_str("\\\\x");
            for byte in refresh_hash(i)?.as_bytes() {
                let _ = write!(out, "{byte:02x}");
            }
            let _ = writeln!(out, "\t{}\t\\N", row.session_id);
            Ok(())
        },
    )
    .await?;
    let tables = format!("\"{schema}\".users, \"{schema}\".sessions, \"{schema}\".refresh_tokens");
    for statement in [format!("VACUUM ANALYZE {tables}"), "CHECKPOINT".to_owned()] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *conn)
            .await
            .map_err(|e| format!("{statement}: {e}"))?;
    }
    let bytes: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = '{schema}' AND c.relname IN ('users', 'sessions', 'refresh_tokens')"
    )))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    u64::try_from(bytes).map_err(|e| e.to_string())
}

/// One `COPY ... FROM STDIN` (text format) of the lines `line` writes for each index.
async fn copy(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    indexes: std::ops::Range<usize>,
    mut line: impl FnMut(usize, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    const CHUNK: usize = 1 << 20;
    let mut copy = conn
        .copy_in_raw(statement)
        .await
        .map_err(|e| format!("{statement}: {e}"))?;
    let mut buffer = String::with_capacity(CHUNK + 1024);
    for i in indexes {
        line(i, &mut buffer)?;
        if buffer.len() >= CHUNK {
            copy.send(buffer.as_bytes()).await.map_err(|e| e.to_string())?;
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.as_bytes()).await.map_err(|e| e.to_string())?;
    }
    copy.finish().await.map_err(|e| format!("{statement}: {e}"))?;
    Ok(())
}

/// `timestamptz` text input, UTC, to the microsecond.
fn pg_time(us: i64) -> Result<String, String> {
    let t = time_of(us)?;
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    ))
}

// ---------------------------------------------------------------------------------------
// Tables and plot.

/// `1k`, `100k`, `1M`.
fn count(accounts: usize) -> String {
    match accounts {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Three significant figures, or the integer part when larger.
fn us(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn store_name(store: &str) -> &str {
    match store {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        other => other,
    }
}

/// (store, op) → accounts → figure, stores and ops in the order measured.
fn by_series(figures: &[Figure]) -> Vec<((String, String), BTreeMap<usize, Figure>)> {
    let mut series: Vec<((String, String), BTreeMap<usize, Figure>)> = Vec::new();
    for figure in figures {
        let key = (figure.store.clone(), figure.op.clone());
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, points)) => {
                points.insert(figure.accounts, figure.clone());
            }
            None => series.push((key, BTreeMap::from([(figure.accounts, figure.clone())]))),
        }
    }
    series
}

fn print_tables(figures: &[Figure]) {
    let series = by_series(figures);
    let mut sizes: Vec<usize> = figures.iter().map(|f| f.accounts).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let (Some(&smallest), Some(&largest)) = (sizes.first(), sizes.last()) else {
        return;
    };
    let (rounds, samples) = figures.first().map_or((0, 0), |f| (f.rounds, f.samples));
    let ratio_head = format!("{} / {}", count(largest), count(smallest));
    let header: Vec<String> = sizes.iter().map(|&n| format!("{} accounts", count(n))).collect();
    for (name, pick) in [
        ("p99", (|f: &Figure| f.p99) as fn(&Figure) -> Spread),
        ("p50", |f: &Figure| f.p50),
    ] {
        println!(
            "{name} in µs: median of {rounds} rounds of {samples} calls (lowest–highest round); ratio of the medians\n"
        );
        let goal = if name == "p99" { " | within 1.5×" } else { "" };
        println!("| store | operation | {} | {ratio_head}{goal} |", header.join(" | "));
        println!(
            "|---|---|{}---|{}",
            "---|".repeat(sizes.len()),
            if goal.is_empty() { "" } else { "---|" }
        );
        for ((store, op), points) in &series {
            let cells: Vec<String> = sizes
                .iter()
                .map(|n| points.get(n).map_or_else(String::new, |f| pick(f).text()))
                .collect();
            let ratio = match (points.get(&smallest), points.get(&largest)) {
                (Some(a), Some(b)) => pick(b).median / pick(a).median,
                _ => f64::NAN,
            };
            let verdict = match (name, ratio <= 1.5) {
                ("p99", true) => " | yes",
                ("p99", false) => " | **no**",
                _ => "",
            };
            println!(
                "| {} | {op} | {} | {ratio:.2}{verdict} |",
                store_name(store),
                cells.join(" | ")
            );
        }
        println!();
    }
    println!("Slowest call and mean, µs (all rounds):\n");
    println!("| store | operation | {} |", header.join(" | "));
    println!("|---|---|{}", "---|".repeat(sizes.len()));
    for ((store, op), points) in &series {
        let cells: Vec<String> = sizes
            .iter()
            .map(|n| {
                points
                    .get(n)
                    .map_or_else(String::new, |f| format!("max {}, mean {}", us(f.max), us(f.mean)))
            })
            .collect();
        println!("| {} | {op} | {} |", store_name(store), cells.join(" | "));
    }
}

/// p50 (left) and p99 (right) against the number of accounts, both axes logarithmic: one
/// line per operation and store through the median round's value, with a bar from the
/// lowest round's to the highest's (colour: operation; SQLite solid with circles,
/// PostgreSQL dashed with triangles).
fn draw(path: &Path, figures: &[Figure]) -> Result<(), String> {
    use plotters::prelude::*;

    const COLOURS: [RGBColor; 3] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44)];
    let series = by_series(figures);
    let accounts = figures.iter().map(|f| f.accounts as f64);
    let (x_min, x_max) = accounts.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let values = figures.iter().flat_map(|f| [f.p50.min, f.p99.max]);
    let (y_min, y_max) = values.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let (rounds, samples) = figures.first().map_or((0, 0), |f| (f.rounds, f.samples));
    let error = |e: DrawingAreaErrorKind<_>| format!("plot: {e}");
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(error)?;
    let root = root
        .titled(
            &format!(
                "Latency against accounts: one call at a time, minimal-cost hasher; median of {rounds} rounds of \
                 {samples} calls, bars from the lowest round to the highest"
            ),
            ("sans-serif", 16),
        )
        .map_err(error)?;
    let (left, right) = root.split_horizontally(600);
    for (area, title, pick) in [
        (left, "p50", (|f: &Figure| f.p50) as fn(&Figure) -> Spread),
        (right, "p99", |f: &Figure| f.p99),
    ] {
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // Headroom above the data for the legend.
            .build_cartesian_2d(
                (x_min / 2.0..x_max * 2.0).log_scale(),
                (y_min / 1.5..y_max * 5.0).log_scale(),
            )
            .map_err(error)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(20)
            .x_desc("accounts (log scale)")
            .y_desc(format!("{title}, µs (log scale)"))
            .x_label_formatter(&|x| count(x.round() as usize))
            // Labels at 1, 2 and 5 of each decade only: the others crowd.
            .y_label_formatter(&|y| {
                let leading = *y / 10f64.powf(y.log10().floor());
                if [1.0, 2.0, 5.0].iter().any(|l| (leading - l).abs() < 0.01) {
                    us(*y)
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(error)?;
        for ((store, op), points) in &series {
            let colour = COLOURS[OPS.iter().position(|o| o == op).unwrap_or(0) % COLOURS.len()];
            let line: Vec<(f64, f64)> = points.values().map(|f| (f.accounts as f64, pick(f).median)).collect();
            let label = format!("{op}, {}", store_name(store));
            let style = colour.stroke_width(2);
            let postgres = store == "postgres";
            let drawn = if postgres {
                chart.draw_series(DashedLineSeries::new(line.clone(), 8, 5, style))
            } else {
                chart.draw_series(LineSeries::new(line.clone(), style))
            }
            .map_err(error)?;
            // Dashed for PostgreSQL; two touching segments draw SQLite's solid line.
            let gap = if postgres { 5 } else { 0 };
            drawn.label(label).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], style)
                    + PathElement::new(vec![(8 + gap, 0), (21, 0)], style)
            });
            chart
                .draw_series(points.values().map(|f| {
                    let x = f.accounts as f64;
                    PathElement::new(vec![(x, pick(f).min), (x, pick(f).max)], colour.stroke_width(1))
                }))
                .map_err(error)?;
            if postgres {
                chart
                    .draw_series(line.iter().map(|&p| TriangleMarker::new(p, 5, colour.filled())))
                    .map_err(error)?;
            } else {
                chart
                    .draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                    .map_err(error)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(error)?;
    }
    root.present().map_err(error)?;
    Ok(())
}
