//! `hood-watch`: see firmware/README.md. Exit status: 0 after a clean stop (signal, end of a finite
//! feed, --max-frames), 2 when it refuses to start (bad options, model, self-test, threshold), 3
//! after a stop when events were lost (the event log's disk refused them for too long).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let stop = Arc::new(AtomicBool::new(false));
    // First signal: stop cleanly. A second one while stopping: exit at once (status 130).
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let r = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()));
        if let Err(e) = r {
            eprintln!("hood-watch: cannot install the handler for signal {sig}: {e}");
            std::process::exit(2);
        }
    }
    let opts = match hood_firmware::config::Options::load() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hood-watch: {e}");
            std::process::exit(2);
        }
    };
    if let Some(shell) = opts.completions {
        use clap::CommandFactory;
        use std::io::Write;
        let cmd = hood_firmware::config::Options::command();
        let script = hood_cli::cli_docs::completions(&cmd, shell);
        if let Err(e) = std::io::stdout().write_all(&script) {
            eprintln!("hood-watch: {e}");
            std::process::exit(2);
        }
        return;
    }
    if let Some(dir) = &opts.man_pages {
        use clap::CommandFactory;
        let cmd = hood_firmware::config::Options::command();
        match hood_cli::cli_docs::write_man_pages(&cmd, dir) {
            Ok(pages) => pages.iter().for_each(|p| println!("{}", p.display())),
            Err(e) => {
                eprintln!("hood-watch: {}: {e}", dir.display());
                std::process::exit(2);
            }
        }
        return;
    }
    if opts.calibrate_from.is_some() {
        if let Err(e) = hood_firmware::site_calibration::run(&opts, stop) {
            eprintln!("hood-watch: {e}");
            std::process::exit(2);
        }
        return;
    }
    let watch = match hood_firmware::app::build(&opts, stop) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("hood-watch: {e}");
            std::process::exit(2);
        }
    };
    match watch.run() {
        Ok(s) => {
            let raised = s.stats.alerts_raised;
            let frames: u64 = s.cameras.iter().map(|c| c.1.frames).sum();
            println!(
                "hood-watch: stopped ({}), {frames} frames, {raised} alert(s), pin inactive",
                s.reason.name(),
            );
            if s.events_lost > 0 {
                eprintln!(
                    "hood-watch: {} event(s) never reached the event log (disk full or failing for too long); exit status 3",
                    s.events_lost
                );
                std::process::exit(3);
            }
        }
        Err(e) => {
            eprintln!("hood-watch: {e}");
            std::process::exit(2);
        }
    }
}
