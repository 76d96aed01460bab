//! Top-k collection that enforces access inside the search loop.
//!
//! Filtering with a query (`relevance AND readers:(...)`) makes tantivy intersect, which
//! rules out block-max WAND. Here the relevance query stays a pure union of term scorers,
//! tantivy prunes with WAND, and each candidate is admitted only when its `readers` fast
//! field holds one of the caller's allowed values. A segment where no allowed value
//! occurs is not searched at all.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// The `k` best documents whose readers include one of `allowed`, best first.
pub(crate) struct ReadableTopDocs<'a> {
    pub k: usize,
    /// The name of the multi-valued string fast field listing who may read a document.
    pub readers_field: &'a str,
    pub allowed: &'a [&'a str],
}

/// Who may read each document of one segment.
struct Access {
    readers: StrColumn,
    /// Term ordinals, in this segment's dictionary, of the allowed values present.
    allowed: Vec<u64>,
}

impl Access {
    /// `None` when no document of the segment is readable.
    fn of(
        reader: &SegmentReader,
        field: &str,
        allowed: &[&str],
    ) -> tantivy::Result<Option<Access>> {
        let Some(readers) = reader.fast_fields().str(field)? else {
            return Ok(None);
        };
        let mut ordinals = Vec::with_capacity(allowed.len());
        for value in allowed {
            if let Some(ordinal) = readers.dictionary().term_ord(value)? {
                ordinals.push(ordinal);
            }
        }
        Ok((!ordinals.is_empty()).then_some(Access {
            readers,
            allowed: ordinals,
        }))
    }

    fn admits(&self, doc: DocId) -> bool {
        self.readers
            .term_ords(doc)
            .any(|ordinal| self.allowed.contains(&ordinal))
    }
}

/// A candidate: score first, then the lower document id wins ties (as tantivy does).
#[derive(Clone, Copy, PartialEq)]
struct Hit(Score, DocId);

impl Eq for Hit {}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `k` hits seen, as a min-heap.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Hit>>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn push(&mut self, score: Score, doc: DocId) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Hit(score, doc)));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(worst)| Hit(score, doc) > *worst)
        {
            self.heap.pop();
            self.heap.push(Reverse(Hit(score, doc)));
        }
    }

    /// Scores at or below this cannot enter any more.
    fn threshold(&self) -> Score {
        match self.heap.peek() {
            Some(Reverse(worst)) if self.heap.len() >= self.k => worst.0,
            _ => Score::MIN,
        }
    }

    fn into_sorted(self, segment_ord: SegmentOrdinal) -> Vec<(Score, DocAddress)> {
        // `into_sorted_vec` of `Reverse` is worst last: best first.
        let hits = self.heap.into_sorted_vec();
        hits.into_iter()
            .map(|Reverse(Hit(score, doc_id))| {
                (
                    score,
                    DocAddress {
                        segment_ord,
                        doc_id,
                    },
                )
            })
            .collect()
    }
}

pub(crate) struct ReadableSegmentCollector {
    access: Option<Access>,
    top: TopK,
    segment_ord: SegmentOrdinal,
}

impl SegmentCollector for ReadableSegmentCollector {
    type Fruit = Vec<(Score, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self
            .access
            .as_ref()
            .is_some_and(|access| access.admits(doc))
        {
            self.top.push(score, doc);
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.top.into_sorted(self.segment_ord)
    }
}

impl Collector for ReadableTopDocs<'_> {
    type Fruit = Vec<(Score, DocAddress)>;
    type Child = ReadableSegmentCollector;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(ReadableSegmentCollector {
            access: Access::of(reader, self.readers_field, self.allowed)?,
            top: TopK::new(self.k),
            segment_ord,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(Score, DocAddress)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        all.truncate(self.k);
        Ok(all)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Fruit> {
        let Some(access) = Access::of(reader, self.readers_field, self.allowed)? else {
            return Ok(Vec::new());
        };
        let alive = reader.alive_bitset();
        let mut top = TopK::new(self.k);
        weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
            let deleted = alive.is_some_and(|alive| alive.is_deleted(doc));
            if !deleted && access.admits(doc) {
                top.push(score, doc);
            }
            top.threshold()
        })?;
        Ok(top.into_sorted(segment_ord))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_best_first_with_ties_to_the_lower_id() {
        let mut top = TopK::new(3);
        for (score, doc) in [(1.0, 1), (5.0, 2), (3.0, 3), (5.0, 0), (0.5, 4), (4.0, 5)] {
            top.push(score, doc);
        }
        assert_eq!(top.threshold(), 4.0);
        let docs: Vec<(Score, DocId)> = top
            .into_sorted(7)
            .into_iter()
            .map(|(s, a)| (s, a.doc_id))
            .collect();
        assert_eq!(docs, [(5.0, 0), (5.0, 2), (4.0, 5)]);
    }

    #[test]
    fn an_empty_or_zero_heap_admits_everything_above_the_minimum() {
        assert_eq!(TopK::new(2).threshold(), Score::MIN);
        let mut none = TopK::new(0);
        none.push(1.0, 1);
        assert!(none.into_sorted(0).is_empty());
    }
}
