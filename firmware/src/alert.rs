//! The alert output: an `embedded_hal::digital::OutputPin` driven *active* while alerting.
//! [`PinAlert`] adapts any embedded-hal 1.0 pin (GPIO character device on Linux, a mock in tests)
//! and handles active-low wiring; [`LogPin`] is the pin for machines without one.

use embedded_hal::digital::{Error as _, ErrorKind, ErrorType, OutputPin};
#[cfg(target_os = "linux")]
use linux_embedded_hal::gpio_cdev;
use std::path::PathBuf;

/// An alert output that could not be driven: the output's name and what its pin reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pin}: cannot drive pin: {kind:?}")]
pub struct PinError {
    pub pin: String,
    pub kind: ErrorKind,
}

/// What to check when the GPIO character device refuses hood-watch.
const PERMISSION_HINT: &str =
    "(is the user in the group that owns the chip? see firmware/README.md, GPIO permissions)";

/// Why line `line` of GPIO chip `chip` cannot be opened as the alert output ([`open_gpio`]).
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[cfg(target_os = "linux")]
    #[error("{} line {line}: {source} {PERMISSION_HINT}", chip.display())]
    Chip {
        chip: PathBuf,
        line: u32,
        #[source]
        source: gpio_cdev::Error,
    },
    #[cfg(target_os = "linux")]
    #[error("{} line {line}: {source}", chip.display())]
    Line {
        chip: PathBuf,
        line: u32,
        #[source]
        source: gpio_cdev::Error,
    },
    #[cfg(target_os = "linux")]
    #[error(
        "{} line {line}: cannot request as output: {source} {PERMISSION_HINT}",
        chip.display()
    )]
    Request {
        chip: PathBuf,
        line: u32,
        #[source]
        source: gpio_cdev::Error,
    },
    #[cfg(not(target_os = "linux"))]
    #[error("{}: GPIO character devices exist only on Linux", chip.display())]
    NotLinux { chip: PathBuf },
}

/// What the daemon drives. Object-safe so the daemon does not care which pin it has.
pub trait AlertOutput {
    /// Drives the output active (`true`) or inactive.
    fn set_active(&mut self, active: bool) -> Result<(), PinError>;
    /// The last state driven (`None` before the first call).
    fn state(&self) -> Option<bool>;
    fn describe(&self) -> String;
}

/// An embedded-hal pin as an alert output: active = high, or low when `active_low`.
#[derive(Debug)]
pub struct PinAlert<P> {
    pin: P,
    active_low: bool,
    name: String,
    state: Option<bool>,
}

impl<P: OutputPin> PinAlert<P> {
    pub fn new(pin: P, active_low: bool, name: impl Into<String>) -> PinAlert<P> {
        PinAlert {
            pin,
            active_low,
            name: name.into(),
            state: None,
        }
    }

    pub fn into_inner(self) -> P {
        self.pin
    }
}

impl<P: OutputPin> AlertOutput for PinAlert<P> {
    fn set_active(&mut self, active: bool) -> Result<(), PinError> {
        let r = if active != self.active_low {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        r.map_err(|e| PinError {
            pin: self.name.clone(),
            kind: e.kind(),
        })?;
        self.state = Some(active);
        Ok(())
    }

    fn state(&self) -> Option<bool> {
        self.state
    }

    fn describe(&self) -> String {
        format!(
            "{} (active-{})",
            self.name,
            if self.active_low { "low" } else { "high" }
        )
    }
}

/// A pin that only logs its level: the alert output when no GPIO is configured.
#[derive(Debug, Default)]
pub struct LogPin {
    high: Option<bool>,
}

impl LogPin {
    pub fn is_high(&self) -> Option<bool> {
        self.high
    }
}

impl ErrorType for LogPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for LogPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if self.high != Some(false) {
            log::info!("alert pin (log only): low");
        }
        self.high = Some(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        if self.high != Some(true) {
            log::info!("alert pin (log only): high");
        }
        self.high = Some(true);
        Ok(())
    }
}

/// Opens line `line` of the GPIO character device `chip` as an output, initially inactive.
#[cfg(target_os = "linux")]
pub fn open_gpio(
    chip: &std::path::Path,
    line: u32,
    active_low: bool,
) -> Result<PinAlert<linux_embedded_hal::CdevPin>, GpioError> {
    use gpio_cdev::{Chip, LineRequestFlags};
    let chip_path = || chip.to_path_buf();
    let mut c = Chip::new(chip).map_err(|source| GpioError::Chip {
        chip: chip_path(),
        line,
        source,
    })?;
    let l = c.get_line(line).map_err(|source| GpioError::Line {
        chip: chip_path(),
        line,
        source,
    })?;
    let inactive_level = u8::from(active_low);
    let handle = l
        .request(LineRequestFlags::OUTPUT, inactive_level, "hood-watch")
        .map_err(|source| GpioError::Request {
            chip: chip_path(),
            line,
            source,
        })?;
    let pin = linux_embedded_hal::CdevPin::new(handle).map_err(|source| GpioError::Line {
        chip: chip_path(),
        line,
        source,
    })?;
    let what = format!("{} line {line}", chip.display());
    Ok(PinAlert::new(pin, active_low, format!("gpio {what}")))
}

#[cfg(not(target_os = "linux"))]
pub fn open_gpio(
    chip: &std::path::Path,
    _line: u32,
    _active_low: bool,
) -> Result<PinAlert<LogPin>, GpioError> {
    Err(GpioError::NotLinux {
        chip: chip.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_pin_tracks_levels_and_active_low_inverts() {
        let mut a = PinAlert::new(LogPin::default(), true, "log");
        a.set_active(true).unwrap();
        assert_eq!(a.state(), Some(true));
        let pin = a.into_inner();
        assert_eq!(pin.is_high(), Some(false));
    }

    #[test]
    fn a_missing_gpio_chip_is_a_clear_error() {
        let e = open_gpio(
            std::path::Path::new("/dev/gpiochip-does-not-exist"),
            3,
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("/dev/gpiochip-does-not-exist"), "{e}");
    }
}
