//! Injected write failures for tests (cargo feature `fault-injection`; never in a release
//! build). With the feature, while the file named by `HOOD_FAULTS_FILE` exists, every write of a
//! kind listed in it (whitespace-separated: `events`, `overlays`, `stats`) fails with `ENOSPC`,
//! or `EIO` for kinds written `kind=EIO`. A test creates the file to fill the "disk" and removes
//! it to free it again, without root and without a real full filesystem. Without the feature
//! [`check`] is an empty inline function.

/// The kinds of files hood-watch writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Events,
    Overlays,
    Stats,
}

impl Write {
    pub fn name(self) -> &'static str {
        match self {
            Write::Events => "events",
            Write::Overlays => "overlays",
            Write::Stats => "stats",
        }
    }
}

/// `Err` when a failure of this kind is injected now.
#[cfg(feature = "fault-injection")]
pub fn check(kind: Write) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("HOOD_FAULTS_FILE") else {
        return Ok(());
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    for word in text.split_whitespace() {
        let (k, errno) = word.split_once('=').unwrap_or((word, "ENOSPC"));
        if k == kind.name() {
            let code = if errno == "EIO" { 5 } else { 28 };
            return Err(std::io::Error::from_raw_os_error(code));
        }
    }
    Ok(())
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn check(_kind: Write) -> std::io::Result<()> {
    Ok(())
}
