//! Runtime instruction-set dispatch.
//!
//! The CPU is probed once ([`Isa::detected`]) and the path every kernel takes by default is cached
//! in [`Isa::active`]. `RECUR_ISA=scalar|avx2|avx512` asks for a path; a request the CPU cannot run
//! is clamped down to the best path it can, with one line on stderr saying so. Kernels also take an
//! explicit [`Isa`] (`*_with_isa` functions) so one test process can exercise every path the host has.
//!
//! `wide` picks its SIMD width when it is compiled, not at run time, so it is only the portable
//! fallback ([`Isa::Scalar`]); the AVX2 and AVX-512 paths are `core::arch` intrinsics inside
//! `#[target_feature]` functions.

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set path. Ordered: a larger value needs strictly more of the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code (`wide` at the compile-time baseline, plain loops). Runs everywhere.
    Scalar,
    /// x86-64 AVX2 + FMA (8 f32 lanes, 16 vector registers).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL (16 f32 lanes, 32 vector registers).
    Avx512,
}

impl Isa {
    /// Every path, weakest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name used by `RECUR_ISA` and in benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a `RECUR_ISA` value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx-512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU (and OS) can run the path. `is_x86_feature_detected!` checks the OS-enabled
    /// state (XCR0), so it is trusted over raw CPUID.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best path this CPU runs.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .rev()
                .find(|isa| isa.is_available())
                .unwrap_or(Isa::Scalar)
        })
    }

    /// Every path this CPU runs, weakest first (what tests iterate over).
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// The path kernels take by default: `RECUR_ISA` if set (clamped to what the CPU runs), else
    /// the best detected. Decided once per process.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let requested = std::env::var("RECUR_ISA").ok();
            let (isa, message) = resolve_request(requested.as_deref(), Isa::detected());
            if let Some(message) = message {
                eprintln!("recur: {message}");
            }
            isa
        })
    }

    /// `self` if the CPU runs it, else the best path below it that it does run.
    pub fn clamp_to_host(self) -> Isa {
        self.min(Isa::detected())
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Turns a `RECUR_ISA` request into the path to use and, when the request was not honoured as
/// written, a message explaining why. Pure, so it is testable without touching the environment.
pub fn resolve_request(requested: Option<&str>, detected: Isa) -> (Isa, Option<String>) {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return (detected, None);
    };
    match Isa::from_name(requested) {
        None => (
            detected,
            Some(format!(
                "RECUR_ISA={requested:?} is not one of scalar, avx2, avx512; using {detected}"
            )),
        ),
        Some(isa) if isa > detected => (
            detected,
            Some(format!(
                "RECUR_ISA={isa} is not supported by this CPU; clamped to {detected}"
            )),
        ),
        Some(isa) => (isa, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::from_name("sse9"), None);
    }

    #[test]
    fn request_is_clamped_to_the_host() {
        assert_eq!(resolve_request(None, Isa::Avx2), (Isa::Avx2, None));
        assert_eq!(
            resolve_request(Some("scalar"), Isa::Avx2),
            (Isa::Scalar, None)
        );
        let (isa, message) = resolve_request(Some("avx512"), Isa::Avx2);
        assert_eq!(isa, Isa::Avx2);
        assert!(message.unwrap().contains("clamped to avx2"));
        let (isa, message) = resolve_request(Some("mmx"), Isa::Avx512);
        assert_eq!(isa, Isa::Avx512);
        assert!(message.unwrap().contains("not one of"));
    }

    #[test]
    fn detected_is_available_and_active_is_not_above_it() {
        assert!(Isa::detected().is_available());
        assert!(Isa::active() <= Isa::detected());
        assert_eq!(Isa::available().first(), Some(&Isa::Scalar));
    }
}
