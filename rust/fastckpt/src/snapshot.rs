//! Capturing tensors' bytes for a save that finishes in the background: a copy spread over every core, so
//! that the caller may change its arrays as soon as the copy returns, while the slow part (the writes) goes
//! on behind it.
//!
//! Thread safety: a function of borrowed slices only; it runs on rayon's global pool.
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Bytes one task copies: large enough that scheduling costs nothing beside the copy, small enough that one
/// large tensor is spread over every core.
const TASK_BYTES: usize = 4 << 20;

/// Copies each source into its destination (of the same length) on every core at once.
pub fn copy_parallel(copies: &mut [(&[u8], &mut [u8])]) -> Result<()> {
    if let Some((source, destination)) = copies.iter().find(|(source, destination)| source.len() != destination.len()) {
        return Err(Error::invalid_argument(format!(
            "cannot copy {} bytes into {} bytes",
            source.len(),
            destination.len()
        )));
    }
    let tasks: Vec<(&[u8], &mut [u8])> = copies
        .iter_mut()
        .flat_map(|(source, destination)| source.chunks(TASK_BYTES).zip(destination.chunks_mut(TASK_BYTES)))
        .collect();
    tasks.into_par_iter().for_each(|(source, destination)| destination.copy_from_slice(source));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_byte_of_every_pair() {
        let large: Vec<u8> = (0..3 * TASK_BYTES + 17).map(|i| (i * 31 % 251) as u8).collect();
        let small = vec![7u8; 5];
        let mut out_large = vec![0u8; large.len()];
        let mut out_small = vec![0u8; small.len()];
        let mut empty_out: Vec<u8> = Vec::new();
        copy_parallel(&mut [(&large, &mut out_large), (&small, &mut out_small), (&[], &mut empty_out)]).unwrap();
        assert_eq!(out_large, large);
        assert_eq!(out_small, small);
    }

    #[test]
    fn refuses_lengths_that_differ_before_copying_anything() {
        let mut first = vec![0u8; 4];
        let mut second = vec![0u8; 2];
        let error = copy_parallel(&mut [(&[1, 2, 3, 4], &mut first), (&[1, 2, 3], &mut second)]).unwrap_err();
        assert!(error.to_string().contains("cannot copy 3 bytes into 2 bytes"), "{error}");
        assert_eq!(first, [0; 4]);
    }
}
