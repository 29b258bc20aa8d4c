//! A small random number generator with a stable sequence, and weighted choice.

use uuid::Uuid;

/// Items with integer weights, picked by binary search over the running totals.
#[derive(Debug, Clone)]
pub(crate) struct Weighted<T> {
    pub(crate) cumulative: Vec<u32>,
    pub(crate) items: Vec<T>,
}

impl<T> Weighted<T> {
    pub(crate) fn new(entries: Vec<(u32, T)>) -> Self {
        let mut cumulative = Vec::with_capacity(entries.len());
        let mut items = Vec::with_capacity(entries.len());
        let mut total = 0u32;
        for (weight, item) in entries {
            debug_assert!(weight > 0, "a zero weight would never be picked");
            total += weight;
            cumulative.push(total);
            items.push(item);
        }
        Weighted { cumulative, items }
    }

    pub(crate) fn pick(&self, rng: &mut Rng) -> &T {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let roll = rng.below(total);
        let index = self.cumulative.partition_point(|bound| *bound <= roll);
        &self.items[index.min(self.items.len() - 1)]
    }
}

/// SplitMix64's output function: a bijection on `u64` that scrambles well.
pub(crate) fn splitmix64(value: u64) -> u64 {
    let mut mixed = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

/// xoshiro256++: small, fast and with a stable sequence, unlike a library generator whose
/// output may change between versions (that would silently change every generated event).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    pub(crate) state: [u64; 4],
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut value = seed;
        let state = std::array::from_fn(|_| {
            value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
            splitmix64(value)
        });
        Rng { state }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s0.wrapping_add(*s3).rotate_left(23).wrapping_add(*s0);
        let shifted = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= shifted;
        *s3 = s3.rotate_left(45);
        result
    }

    /// A number in `0..bound` (Lemire's multiply-shift; the bias is below 2^-32).
    pub(crate) fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }

    pub(crate) fn uuid_v4(&mut self) -> Uuid {
        let high = self.next_u64();
        let low = self.next_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high.to_le_bytes());
        bytes[8..].copy_from_slice(&low.to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}
