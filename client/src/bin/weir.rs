//! `weir`, the admin CLI.
fn main() {
    eprintln!("weir: the admin CLI is not built yet");
    std::process::exit(2);
}
