//! Shell completions and man pages generated from a program's clap definition, so they always
//! match its options: `hood completions SHELL`, `hood man-pages DIR`, and `--completions SHELL` /
//! `--man-pages DIR` on `convert` and `hood-watch`.

use clap::Command;
use std::io;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// The completion script of `cmd` for `shell`.
pub fn completions(cmd: &Command, shell: Shell) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// Writes `<name>.1` for `cmd` and `<name>-<sub>.1` for each of its subcommands into `dir`
/// (created if missing; each file atomically). Returns the paths written.
pub fn write_man_pages(cmd: &Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd.clone();
    cmd.build();
    let root = cmd.get_name().to_string();
    let mut pages = vec![(root.clone(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{root}-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    let mut written = Vec::new();
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        let path = dir.join(format!("{name}.1"));
        hood_runtime::atomic::write_file(&path, &roff)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Command {
        Command::new("demo")
            .about("A demo")
            .arg(
                clap::Arg::new("fast")
                    .long("fast")
                    .action(clap::ArgAction::SetTrue),
            )
            .subcommand(Command::new("run").about("Run it"))
    }

    #[test]
    fn completions_and_pages_cover_the_options_and_subcommands() {
        let bash = String::from_utf8(completions(&demo(), Shell::Bash)).unwrap();
        assert!(bash.contains("--fast") && bash.contains("run"), "{bash}");
        let d = tempfile::tempdir().unwrap();
        let pages = write_man_pages(&demo(), d.path()).unwrap();
        let names: Vec<_> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["demo.1", "demo-run.1"]);
        let root = std::fs::read_to_string(&pages[0]).unwrap();
        assert!(
            root.starts_with(".ie") || root.contains(".TH demo"),
            "{root}"
        );
        assert!(root.contains("fast"));
    }
}
