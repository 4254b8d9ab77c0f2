#!/usr/bin/env python3
"""Abusive HTTP clients for benches/abuse.sh (standard library only: asyncio sockets).

    abuse.py MODE --port PORT --connections N --duration SECONDS

MODE is one of
  slowloris  N connections that each send a request head one byte a second and never
             finish it (GET /me ..., then an endless header value);
  body       N connections that send a complete head of POST /login with
             Content-Length: 1000 and Content-Type: application/x-www-form-urlencoded,
             then a few bytes of the body, and stall;
  flood      N connections opened as fast as possible and held idle (nothing sent).

Every connection the server ends is reopened at once, so N stay open (or being opened) for
the whole run. The run stops after SECONDS; every socket is then closed by us. Only
127.0.0.1 is ever contacted.

Prints one line of key=value pairs on stdout when done:
  opened            connections established
  open_mean         connections open on average (sampled every 100 ms over the run)
  open_max          the most open at once
  connecting_mean   connections waiting in connect() on average (SYN sent, not yet
                    established: the server's accept queue full)
  refused_503       answers 503 read (the server's `busy` refusal over its cap)
  cut               connections the server ended otherwise (any other answer, a close
                    without an answer, a reset)
  cut_408 cut_other_status cut_silent cut_reset   the cuts by kind
  cut_age_mean_s cut_age_min_s cut_age_max_s      how long a cut connection had been open
  refused_age_mean_s                              how long a refused one had been open
  connect_errors    connect() failures (each retried after 10 ms)
  statuses          every status read, as status:count, comma-separated
and, on stderr, one line a second: the time, open connections, refusals and cuts so far.
"""

import argparse
import asyncio
import sys
import time

HOST = "127.0.0.1"

SLOWLORIS_HEAD = (
    b"GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: abuse.py slowloris\r\nX-Slow: "
)
BODY_HEAD = (
    b"POST /login HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"User-Agent: abuse.py body\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n"
    b"\r\n"
    b"username=a"
)


class Stats:
    def __init__(self):
        self.opened = 0
        self.open = 0
        self.open_max = 0
        self.connecting = 0
        self.refused = 0
        self.refused_ages = []
        self.cut = {"408": 0, "other_status": 0, "silent": 0, "reset": 0}
        self.cut_ages = []
        self.connect_errors = {}
        self.statuses = {}
        self.samples = []
        self.connecting_samples = []

    def cuts(self):
        return sum(self.cut.values())


def status_of(received):
    """The status code of an HTTP/1.x answer's first line, or None."""
    line = received.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


async def trickle(writer, rate):
    """Slowloris: the head one byte at a time, `rate` bytes a second, never finished."""
    sent = 0
    head = SLOWLORIS_HEAD
    while True:
        byte = head[sent : sent + 1] if sent < len(head) else b"a"
        try:
            writer.write(byte)
            await writer.drain()
        except OSError:
            return  # cut: the reader sees the end
        sent += 1
        await asyncio.sleep(1.0 / rate)


async def one_connection(mode, port, rate, stats, deadline):
    """Opens one connection, abuses it until the server ends it; records how it ended.
    Returns False when connecting failed."""
    stats.connecting += 1
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as error:
        name = type(error).__name__
        stats.connect_errors[name] = stats.connect_errors.get(name, 0) + 1
        return False
    finally:
        stats.connecting -= 1
    opened_at = time.monotonic()
    stats.opened += 1
    stats.open += 1
    stats.open_max = max(stats.open_max, stats.open)
    sender = None
    try:
        if mode == "slowloris":
            sender = asyncio.ensure_future(trickle(writer, rate))
        elif mode == "body":
            writer.write(BODY_HEAD)
            try:
                await writer.drain()
            except OSError:
                pass
        received = b""
        reset = False
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                reset = True
                break
            if not data:
                break
            received += data
            # An answer's first line is enough to know the connection is done for: the
            # request was never complete, so nothing can follow it but the close.
            if b"\r\n" in received:
                break
        age = time.monotonic() - opened_at
        status = status_of(received) if received else None
        if status is not None:
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if status == 503:
            stats.refused += 1
            stats.refused_ages.append(age)
        else:
            if status == 408:
                stats.cut["408"] += 1
            elif status is not None or received:
                stats.cut["other_status"] += 1
            elif reset:
                stats.cut["reset"] += 1
            else:
                stats.cut["silent"] += 1
            stats.cut_ages.append(age)
        return True
    finally:
        if sender is not None:
            sender.cancel()
        stats.open -= 1
        writer.close()


async def slot(mode, port, rate, stats, deadline):
    """One of the N connections: reopened at once whenever the server ends it."""
    while time.monotonic() < deadline:
        if not await one_connection(mode, port, rate, stats, deadline):
            await asyncio.sleep(0.01)


async def sampler(stats, started, deadline):
    next_report = started + 1.0
    while True:
        stats.samples.append(stats.open)
        stats.connecting_samples.append(stats.connecting)
        now = time.monotonic()
        if now >= next_report:
            print(
                f"t={now - started:.1f} open={stats.open} connecting={stats.connecting} "
                f"refused_503={stats.refused} cut={stats.cuts()}",
                file=sys.stderr,
                flush=True,
            )
            next_report += 1.0
        await asyncio.sleep(0.1)


async def run(args):
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.duration
    tasks = [
        asyncio.ensure_future(slot(args.mode, args.port, args.rate, stats, deadline))
        for _ in range(args.connections)
    ]
    tasks.append(asyncio.ensure_future(sampler(stats, started, deadline)))
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def mean(values):
    return sum(values) / len(values) if values else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["slowloris", "body", "flood"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--rate", type=float, default=1.0, help="slowloris bytes a second")
    args = parser.parse_args()
    if args.connections < 1 or args.duration <= 0 or args.rate <= 0:
        parser.error("connections, duration and rate must be positive")

    stats = asyncio.run(run(args))
    figures = {
        "mode": args.mode,
        "target": args.connections,
        "opened": stats.opened,
        "open_mean": f"{mean(stats.samples):.1f}",
        "open_max": stats.open_max,
        "connecting_mean": f"{mean(stats.connecting_samples):.1f}",
        "refused_503": stats.refused,
        "cut": stats.cuts(),
        "cut_408": stats.cut["408"],
        "cut_other_status": stats.cut["other_status"],
        "cut_silent": stats.cut["silent"],
        "cut_reset": stats.cut["reset"],
        "cut_age_mean_s": f"{mean(stats.cut_ages):.2f}",
        "cut_age_min_s": f"{min(stats.cut_ages, default=0):.2f}",
        "cut_age_max_s": f"{max(stats.cut_ages, default=0):.2f}",
        "refused_age_mean_s": f"{mean(stats.refused_ages):.4f}",
        "connect_errors": sum(stats.connect_errors.values()),
        "connect_error_kinds": ",".join(f"{k}:{v}" for k, v in sorted(stats.connect_errors.items())) or "-",
        "statuses": ",".join(f"{k}:{v}" for k, v in sorted(stats.statuses.items())) or "-",
    }
    print("ABUSE " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
