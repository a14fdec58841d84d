use getrandom::SysRng;
use rand_core::{Rng, UnwrapErr};

/// The operating system's random number generator as an infallible [`rand_core::CryptoRng`].
///
/// It panics if the operating system cannot supply randomness: with no randomness there is no
/// safe way to continue, and no input can cause it.
pub type OsRng = UnwrapErr<SysRng>;

/// A new handle on the operating system's generator.
pub(crate) fn os_rng() -> OsRng {
    UnwrapErr(SysRng)
}

/// `N` bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    os_rng().fill_bytes(&mut out);
    out
}
