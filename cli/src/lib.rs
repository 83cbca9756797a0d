//! hood's command-line programs' shared parts: shell completions and man pages generated from
//! a clap definition (`cli_docs`), for `hood`, `convert` and `hood-watch`. The `hood` program
//! itself is this crate's binary (src/main.rs); the library crate hood-runtime carries no
//! command-line dependencies.

pub mod cli_docs;
