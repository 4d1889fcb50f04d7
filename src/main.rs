//! The `privfence` binary: parse arguments, run one command, map the result to an exit code.

use clap::Parser;
use privfence::cli::{self, Cli};
use privfence::error::ExitCode;
use privfence::output::Output;

/// mimalloc instead of glibc's malloc: reading 100,000 grant rows and building the model is
/// allocation-bound (malloc and free were a third of `session start`'s CPU at 10,000 accounts;
/// docs/benchmarks.md). The library leaves the allocator to its binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(why) = cli::inline_password(&argv) {
        Output::stdio().status(&format!("privfence: error: {why}"));
        std::process::exit(ExitCode::Error as i32);
    }
    let cli = Cli::parse();
    cli::init_tracing(cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let code = match runtime {
        Ok(rt) => {
            let mut out = Output::stdio();
            match rt.block_on(cli::run(cli, &mut out)) {
                Ok(code) => code,
                Err(e) => {
                    out.status(&format!("privfence: error: {}", privfence::error::chain_text(e.chain())));
                    ExitCode::Error
                }
            }
        }
        Err(e) => {
            Output::stdio().status(&format!("privfence: error: cannot start the async runtime: {e}"));
            ExitCode::Error
        }
    };
    std::process::exit(code as i32);
}
