//! r58: one binary that puts the R58's cameras in front of people
//! (everything lives in the library, `src/lib.rs`).

fn main() {
    r58::init_logging();
    std::process::exit(r58::cli::main(std::env::args().collect()));
}
