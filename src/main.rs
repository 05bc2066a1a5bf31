//! The `skiff` binary: parse, run, report, exit with a documented code.

use clap::Parser;

use skiff::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    let ui = cli::ui_for(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("cannot start the async runtime: {e}"), None);
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(cli::run(cli, &ui));
    if let Err(skiff::error::Error::CommandExit(code)) = result {
        std::process::exit(code);
    }
    if let Err(e) = result {
        ui.error(&e.to_string(), e.hint().as_deref());
        std::process::exit(e.exit_code());
    }
}
