//! `Map`: how offsets in a decoded view lead back to the bytes it was
//! decoded from, and how two maps compose when a view is decoded again.

/// A run of view bytes `[at, next piece's at)` that came from input bytes
/// `start..end` as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub at: usize,
    pub start: usize,
    pub end: usize,
}

/// View offsets to input offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Map {
    /// `o[i]` is the input offset where view byte `i` starts; one more entry
    /// than view bytes (the input end). `u32` halves the memory a map costs
    /// (decoding is limited to blobs under 4 GiB).
    Offsets(Vec<u32>),
    /// Pieces sorted by `at`, the first at 0: every view byte maps to the
    /// whole input span of its piece (decompressed data, Kubernetes keys).
    Pieces(Vec<Piece>),
}

impl Map {
    pub fn offsets(map: Vec<usize>) -> Map {
        Map::Offsets(map.into_iter().map(|o| o as u32).collect())
    }

    /// Index of the piece holding view offset `at`.
    fn piece(pieces: &[Piece], at: usize) -> usize {
        pieces.partition_point(|p| p.at <= at).saturating_sub(1)
    }

    /// The input span covering view bytes `start..end`.
    pub fn span(&self, start: usize, end: usize) -> (usize, usize) {
        match self {
            Map::Offsets(o) => {
                let last = o.len() - 1;
                (o[start.min(last)] as usize, o[end.min(last)] as usize)
            }
            Map::Pieces(p) if p.is_empty() => (0, 0),
            Map::Pieces(p) => {
                let first = Map::piece(p, start);
                let last = Map::piece(p, end.saturating_sub(1).max(start));
                (p[first].start, p[last].end.max(p[first].start))
            }
        }
    }

    /// The map from a view decoded out of this map's view (`child`, in this
    /// view's offsets) straight to this map's input.
    pub fn compose(&self, child: &Map) -> Map {
        match (self, child) {
            (Map::Offsets(p), Map::Offsets(c)) => {
                Map::Offsets(c.iter().map(|&x| p[x as usize]).collect())
            }
            (Map::Offsets(p), Map::Pieces(c)) => Map::Pieces(
                c.iter()
                    .map(|x| Piece {
                        at: x.at,
                        start: p[x.start] as usize,
                        end: p[x.end] as usize,
                    })
                    .collect(),
            ),
            (Map::Pieces(p), Map::Offsets(c)) => {
                // Consecutive child bytes from the same parent piece become
                // one piece.
                let mut out: Vec<Piece> = Vec::new();
                let mut current = usize::MAX;
                for (i, &x) in c[..c.len().saturating_sub(1)].iter().enumerate() {
                    let k = Map::piece(p, x as usize);
                    if k != current {
                        current = k;
                        out.push(Piece {
                            at: i,
                            start: p[k].start,
                            end: p[k].end,
                        });
                    }
                }
                Map::Pieces(out)
            }
            (Map::Pieces(_), Map::Pieces(c)) => Map::Pieces(
                c.iter()
                    .map(|x| {
                        let (start, end) = self.span(x.start, x.end);
                        Piece {
                            at: x.at,
                            start,
                            end,
                        }
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_compose_through_offsets_and_pieces() {
        // parent: view bytes 0..4 come from input 10,12,14,16 (end 18).
        let parent = Map::offsets(vec![10, 12, 14, 16, 18]);
        let child = Map::offsets(vec![1, 2, 4]);
        assert_eq!(parent.compose(&child).span(0, 2), (12, 18));
        let whole = Map::Pieces(vec![Piece {
            at: 0,
            start: 1,
            end: 3,
        }]);
        assert_eq!(parent.compose(&whole).span(0, 5), (12, 16));
    }

    #[test]
    fn pieces_keep_each_byte_in_its_piece() {
        let parent = Map::Pieces(vec![
            Piece {
                at: 0,
                start: 100,
                end: 120,
            },
            Piece {
                at: 10,
                start: 200,
                end: 230,
            },
        ]);
        assert_eq!(parent.span(2, 5), (100, 120));
        assert_eq!(parent.span(12, 14), (200, 230));
        let child = Map::offsets(vec![11, 12, 13]);
        assert_eq!(parent.compose(&child).span(0, 2), (200, 230));
        let child = Map::offsets(vec![3, 4, 11, 12]);
        let m = parent.compose(&child);
        assert_eq!(m.span(0, 1), (100, 120));
        assert_eq!(m.span(2, 3), (200, 230));
    }
}
