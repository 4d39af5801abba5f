//! Key affinity by rendezvous hashing: a key maps to one of a fixed set of buckets, and each
//! bucket belongs to the live node with the highest score for it. When a node dies only its
//! buckets move, each to the next-best node; every node computes the same answer alone.

/// Buckets are what the claim query filters on, so a node's share is a short `IN` list.
pub const BUCKETS: u32 = 256;

/// FNV-1a: stable across processes and versions, unlike `std`'s randomised hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// SplitMix64's finaliser, so nearby inputs score far apart.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn bucket_of(key: &str) -> i32 {
    (mix(fnv1a(key.as_bytes())) % u64::from(BUCKETS)) as i32
}

fn score(node: &str, bucket: i32) -> u64 {
    mix(fnv1a(node.as_bytes()) ^ mix(bucket as u64))
}

/// The buckets `me` owns among `live` (which should include `me`).
pub fn owned_buckets(me: &str, live: &[String]) -> Vec<i32> {
    (0..BUCKETS as i32)
        .filter(|bucket| {
            let winner = live
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(me))
                .max_by(|a, b| {
                    score(a, *bucket)
                        .cmp(&score(b, *bucket))
                        .then_with(|| a.cmp(b))
                });
            winner == Some(me)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn every_bucket_has_exactly_one_owner() {
        let live = nodes(&["a", "b", "c"]);
        let mut owned: Vec<i32> = live.iter().flat_map(|n| owned_buckets(n, &live)).collect();
        owned.sort_unstable();
        assert_eq!(owned, (0..BUCKETS as i32).collect::<Vec<_>>());
        for node in &live {
            let share = owned_buckets(node, &live).len();
            assert!(share > 40, "{node} owns only {share} of {BUCKETS}");
        }
    }

    #[test]
    fn a_dead_nodes_buckets_move_and_the_rest_stay() {
        let before = nodes(&["a", "b", "c"]);
        let after = nodes(&["a", "c"]);
        for survivor in ["a", "c"] {
            let kept = owned_buckets(survivor, &before);
            let now = owned_buckets(survivor, &after);
            assert!(
                kept.iter().all(|b| now.contains(b)),
                "{survivor} lost a bucket"
            );
        }
        let orphaned = owned_buckets("b", &before);
        for bucket in orphaned {
            assert!(
                owned_buckets("a", &after).contains(&bucket)
                    ^ owned_buckets("c", &after).contains(&bucket)
            );
        }
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        assert_eq!(bucket_of("customer-42"), bucket_of("customer-42"));
        assert!((0..BUCKETS as i32).contains(&bucket_of("")));
    }
}
