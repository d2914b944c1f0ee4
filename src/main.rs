//! Thin: parse the command line, load settings, start logging, run.

use std::process::ExitCode;

use clap::Parser;
use rapport::cli::{Cli, Command, run};
use rapport::config::Settings;
use rapport::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if matches!(command, Command::Openapi) {
        #[expect(clippy::print_stdout, reason = "`rapport openapi` prints the document")]
        {
            print!("{}", rapport::openapi::pretty());
        }
        return ExitCode::SUCCESS;
    }
    // A `.env` file is a convenience for development; real environment variables win.
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rapport: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_filter, settings.log_format);
    let outcome = actix_web::rt::System::new().block_on(run(command, settings));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rapport: {err}");
            ExitCode::FAILURE
        }
    }
}
