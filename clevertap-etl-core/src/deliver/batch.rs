//! Packing records into request bodies: profiles first, at most `batch_size` records and
//! `max_body_bytes` serialized bytes per body. Pure.

/// The bytes of `{"d":[` and `]}` around the records.
pub(crate) const ENVELOPE_BYTES: usize = r#"{"d":[]}"#.len();

/// One record to pack: whether it is a profile, and its serialized size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    /// Profiles go before events.
    pub profile: bool,
    /// Serialized size of the record alone.
    pub bytes: usize,
}

/// Packs items into batches of indices into `items`.
///
/// Profiles come before events; otherwise the input order is kept, and batches are filled
/// greedily in that order. A body holds at most `batch_size` records and, with its `{"d":[...]}`
/// envelope and separating commas, at most `max_body_bytes` bytes, except that a record too big
/// for any body travels alone (CleverTap, not this guess of its limit, then decides).
pub(crate) fn pack(items: &[Item], batch_size: usize, max_body_bytes: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let order = items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.profile)
        .chain(items.iter().enumerate().filter(|(_, it)| !it.profile))
        .map(|(i, _)| i);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_bytes = ENVELOPE_BYTES;
    for i in order {
        let extra = items[i].bytes + usize::from(!current.is_empty());
        let full = current.len() >= batch_size || current_bytes + extra > max_body_bytes;
        if full && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            current_bytes = ENVELOPE_BYTES;
        }
        current_bytes += items[i].bytes + usize::from(!current.is_empty());
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(profile: bool, bytes: usize) -> Item {
        Item { profile, bytes }
    }

    #[test]
    fn profiles_first_then_stable() {
        let items = [item(false, 1), item(true, 1), item(false, 1), item(true, 1)];
        assert_eq!(pack(&items, 10, 1000), vec![vec![1, 3, 0, 2]]);
        assert_eq!(pack(&items, 3, 1000), vec![vec![1, 3, 0], vec![2]]);
    }

    #[test]
    fn byte_limit_counts_envelope_and_commas() {
        // Two 10-byte records: 8 + 10 + 1 + 10 = 29 bytes.
        let items = [item(false, 10), item(false, 10), item(false, 10)];
        assert_eq!(pack(&items, 10, 29), vec![vec![0, 1], vec![2]]);
        assert_eq!(pack(&items, 10, 28), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn oversized_record_travels_alone() {
        let items = [item(false, 5), item(false, 500), item(false, 5)];
        assert_eq!(pack(&items, 10, 100), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn empty_input_packs_nothing() {
        assert!(pack(&[], 10, 100).is_empty());
    }
}
