//! `hood-watch` — the camera daemon (its own issue). This build only says so and exits non-zero.
fn main() {
    eprintln!("hood-watch: not built yet (see the hood-watch issue)");
    std::process::exit(2);
}
