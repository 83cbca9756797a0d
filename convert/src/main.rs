//! `convert CKPT... OUT.hood` — not implemented yet: exits with an error saying so.
fn main() {
    eprintln!("convert: not implemented yet in this build (see the convert issue); no file written");
    std::process::exit(2);
}
