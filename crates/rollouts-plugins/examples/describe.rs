//! Prints the registry of a build: `cargo run -p rollouts-plugins --example describe
//! --no-default-features --features metric-web` lists exactly the web provider. The facade's
//! tests run it with several feature sets.

fn main() -> std::process::ExitCode {
    match rollouts_plugins::registry() {
        Ok(registry) => {
            println!("{}", registry.describe());
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}
