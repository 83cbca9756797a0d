//! Activation memory: every value of the graph gets a byte range of one device-local arena,
//! planned by liveness so values whose lifetimes do not overlap share memory.
//!
//! A value lives from the node that defines it (the graph input: before the first node) to
//! the last node that reads it; the graph outputs live to the end (they are copied back to
//! the host after the last node). Placement is greedy first-fit, largest value first.

/// Byte range of one value in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub offset: u64,
    pub size: u64,
}

/// Input to the planner: one value's size and its live interval `[first, last]` in steps
/// (inclusive; step 0 is "before the first node").
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub size: u64,
    pub first: usize,
    pub last: usize,
}

/// The planned arena: one slot per value (`None` for values of size 0 / unused) and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub slots: Vec<Option<Slot>>,
    pub peak_bytes: u64,
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Places every value so that values with overlapping live intervals never share bytes.
/// Offsets and sizes are multiples of `align`.
pub fn plan(values: &[Option<Live>], align: u64) -> Plan {
    let align = align.max(1);
    let mut order: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_some_and(|l| l.size > 0))
        .collect();
    // Largest first; ties by definition order, so plans are deterministic.
    order.sort_by_key(|&i| (std::cmp::Reverse(values[i].map_or(0, |l| l.size)), i));
    let mut slots: Vec<Option<Slot>> = vec![None; values.len()];
    let mut placed: Vec<(Live, Slot)> = Vec::new();
    let mut peak = 0u64;
    for i in order {
        let Some(live) = values[i] else { continue };
        let size = align_up(live.size, align);
        // Ranges taken by values alive at the same time, sorted by offset.
        let mut busy: Vec<Slot> = placed
            .iter()
            .filter(|(l, _)| l.first <= live.last && live.first <= l.last)
            .map(|&(_, s)| s)
            .collect();
        busy.sort_by_key(|s| s.offset);
        let mut offset = 0u64;
        for s in busy {
            if offset + size <= s.offset {
                break;
            }
            offset = offset.max(s.offset + s.size);
        }
        let slot = Slot { offset, size };
        peak = peak.max(offset + size);
        slots[i] = Some(slot);
        placed.push((live, slot));
    }
    Plan {
        slots,
        peak_bytes: peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: Slot, b: Slot) -> bool {
        a.offset < b.offset + b.size && b.offset < a.offset + a.size
    }

    #[test]
    fn chain_reuses_memory() {
        // x0 -> x1 -> x2 -> x3, each 100 bytes: two buffers suffice.
        let v: Vec<Option<Live>> = (0..4)
            .map(|i| {
                Some(Live {
                    size: 100,
                    first: i,
                    last: (i + 1).min(3),
                })
            })
            .collect();
        let p = plan(&v, 64);
        assert_eq!(p.peak_bytes, 256);
    }

    #[test]
    fn live_values_never_overlap() {
        let mut g = crate::rng::Lcg::from_state(12345);
        let mut rnd = |m: u64| g.below(m);
        for _ in 0..50 {
            let v: Vec<Option<Live>> = (0..20)
                .map(|_| {
                    let first = rnd(10) as usize;
                    let last = first + rnd(5) as usize;
                    Some(Live {
                        size: 1 + rnd(1000),
                        first,
                        last,
                    })
                })
                .collect();
            let p = plan(&v, 256);
            for i in 0..v.len() {
                for j in 0..i {
                    let (a, b) = (v[i].unwrap(), v[j].unwrap());
                    if a.first <= b.last && b.first <= a.last {
                        assert!(!overlaps(p.slots[i].unwrap(), p.slots[j].unwrap()));
                    }
                }
                let s = p.slots[i].unwrap();
                assert_eq!(s.offset % 256, 0);
                assert!(s.offset + s.size <= p.peak_bytes);
            }
        }
    }
}
