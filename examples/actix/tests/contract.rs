//! The shared HTTP contract (`examples/contract`) against this server, on both stores.

http_contract::http_contract_tests!(env!("CARGO_BIN_EXE_example-actix"));
