//! A model-based sampler: the Tree-structured Parzen Estimator (Bergstra et
//! al., 2011; Optuna's default), over the discrete values of a search
//! space. After a few random sets, each new set is drawn where the runs
//! ranked best so far are dense and the others are not: the finished runs
//! are split into the best quarter and the rest, each parameter gets a
//! density over its values from either group (a kernel over the value's
//! position for ranges, equal-or-not for choices, plus a flat prior), and
//! of a few dozen candidates drawn from the good densities the one with the
//! highest ratio good / rest is run next.
//!
//! The model starts once ten runs have finished and been ranked (until then
//! sets are drawn at random). Sets are asked for one at a time as workers
//! become free and told their score when their run ends, so no worker
//! waits for a batch. With one worker a seed gives the same sets every
//! time; with several, what a set is drawn from depends on which runs
//! happened to finish first.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use super::optimize::{ParamRange, SearchSpace};

/// Random sets before the model is used (Optuna's default).
const STARTUP: usize = 10;
/// The share of finished runs that counts as good.
const GAMMA: f64 = 0.25;
/// Candidates drawn from the good densities per set.
const CANDIDATES: usize = 24;
/// Random draws at a set not run yet before the untried ones are listed.
const DRAWS: usize = 200;
/// The most sets one search makes: each set is drawn from every finished
/// run (work that grows with the runs), so searches stay well under a
/// second of sampling in all.
pub const MAX_TRIALS: usize = 2_000;

/// What a TPE search is: the space, how many sets, the seed.
#[derive(Debug, Clone)]
pub struct TpeSpec {
    pub space: SearchSpace,
    pub trials: usize,
    pub seed: u64,
}

impl TpeSpec {
    /// How many sets the search makes: its trials, or the whole space when
    /// that is smaller.
    pub fn sets(&self) -> usize {
        let combinations = self
            .space
            .values()
            .map(|range| range.values().len())
            .filter(|count| *count > 0)
            .fold(1usize, usize::saturating_mul);
        self.trials.min(combinations)
    }
}

/// One parameter: its name, its values, and whether they are ordered (a
/// range) or not (a choice).
struct Dimension {
    name: String,
    values: Vec<Value>,
    ordered: bool,
}

struct State {
    rng: ChaCha8Rng,
    asked: usize,
    /// Value indices of every set asked for.
    sets: Vec<Vec<usize>>,
    /// Scores told, by set (None: not finished, or not ranked).
    scores: Vec<Option<Option<f64>>>,
    tried: HashSet<Vec<usize>>,
}

/// A running TPE search, shared by the workers of one optimisation.
pub struct Tpe {
    dimensions: Vec<Dimension>,
    trials: usize,
    state: Mutex<State>,
}

impl Tpe {
    pub fn new(spec: &TpeSpec) -> Self {
        let dimensions = spec
            .space
            .iter()
            .map(|(name, range)| Dimension {
                name: name.clone(),
                values: range.values(),
                ordered: !matches!(range, ParamRange::Choice(_)),
            })
            .filter(|dimension| !dimension.values.is_empty())
            .collect();
        Self {
            dimensions,
            trials: spec.trials,
            state: Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(spec.seed),
                asked: 0,
                sets: Vec::new(),
                scores: Vec::new(),
                tried: HashSet::new(),
            }),
        }
    }

    /// The next set to run and its number, or None when the search has
    /// made its sets (or every combination was run).
    pub fn ask(&self) -> Option<(usize, Map<String, Value>)> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.asked >= self.trials || self.dimensions.is_empty() {
            return None;
        }
        let finished: Vec<(Vec<usize>, Option<f64>)> = state
            .sets
            .iter()
            .zip(&state.scores)
            .filter_map(|(set, score)| score.map(|score| (set.clone(), score)))
            .collect();
        let ranked = finished.iter().filter(|(_, score)| score.is_some()).count();
        let chosen = if ranked < STARTUP {
            self.random_untried(&mut state)
        } else {
            self.modelled(&mut state, &finished)
                .or_else(|| self.random_untried(&mut state))
        }?;
        state.tried.insert(chosen.clone());
        state.sets.push(chosen.clone());
        state.scores.push(None);
        let number = state.asked;
        state.asked += 1;
        Some((number, self.set_of(&chosen)))
    }

    /// The score of set `number` (None: the run failed or is not ranked;
    /// it counts among the rest).
    pub fn tell(&self, number: usize, score: Option<f64>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = state.scores.get_mut(number) {
            *slot = Some(score.filter(|s| s.is_finite()));
        }
    }

    /// How many sets the search makes at most.
    pub fn trials(&self) -> usize {
        self.trials
    }

    fn set_of(&self, indices: &[usize]) -> Map<String, Value> {
        self.dimensions
            .iter()
            .zip(indices)
            .map(|(dimension, index)| (dimension.name.clone(), dimension.values[*index].clone()))
            .collect()
    }

    /// How many different sets the space holds (saturating).
    fn combinations(&self) -> usize {
        self.dimensions.iter().fold(1usize, |count, dimension| {
            count.saturating_mul(dimension.values.len())
        })
    }

    fn random_untried(&self, state: &mut State) -> Option<Vec<usize>> {
        if state.tried.len() >= self.combinations() {
            return None;
        }
        let drawn = (0..DRAWS)
            .map(|_| {
                self.dimensions
                    .iter()
                    .map(|dimension| state.rng.random_range(0..dimension.values.len()))
                    .collect::<Vec<usize>>()
            })
            .find(|set| !state.tried.contains(set));
        // Nearly used up: the first set not tried, in order (a space this
        // full is at most a few times `MAX_TRIALS` sets).
        drawn.or_else(|| {
            let mut set = vec![0; self.dimensions.len()];
            loop {
                if !state.tried.contains(&set) {
                    return Some(set);
                }
                // The next combination, the last parameter fastest.
                let mut position = set.len();
                loop {
                    if position == 0 {
                        return None;
                    }
                    position -= 1;
                    set[position] += 1;
                    if set[position] < self.dimensions[position].values.len() {
                        break;
                    }
                    set[position] = 0;
                }
            }
        })
    }

    /// The best of the candidates drawn from the good densities, by the
    /// ratio of good to rest; None if every candidate was run before.
    fn modelled(
        &self,
        state: &mut State,
        finished: &[(Vec<usize>, Option<f64>)],
    ) -> Option<Vec<usize>> {
        let mut ranked: Vec<&(Vec<usize>, Option<f64>)> = finished
            .iter()
            .filter(|(_, score)| score.is_some())
            .collect();
        ranked.sort_by(|a, b| b.1.unwrap_or(f64::MIN).total_cmp(&a.1.unwrap_or(f64::MIN)));
        let good_count = ((ranked.len() as f64 * GAMMA).ceil() as usize).max(1);
        let good: Vec<&[usize]> = ranked[..good_count]
            .iter()
            .map(|(set, _)| set.as_slice())
            .collect();
        // The rest: the other ranked runs and every unranked one.
        let rest: Vec<&[usize]> = ranked[good_count..]
            .iter()
            .map(|(set, _)| set.as_slice())
            .chain(
                finished
                    .iter()
                    .filter(|(_, score)| score.is_none())
                    .map(|(set, _)| set.as_slice()),
            )
            .collect();
        let densities: Vec<(Vec<f64>, Vec<f64>)> = self
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, dimension)| (density(dimension, d, &good), density(dimension, d, &rest)))
            .collect();
        let mut best: Option<(f64, Vec<usize>)> = None;
        for _ in 0..CANDIDATES {
            let candidate: Vec<usize> = densities
                .iter()
                .map(|(good, _)| draw(&mut state.rng, good))
                .collect();
            if state.tried.contains(&candidate) {
                continue;
            }
            let ratio: f64 = candidate
                .iter()
                .zip(&densities)
                .map(|(index, (good, rest))| (good[*index] / rest[*index]).ln())
                .sum();
            if best.as_ref().is_none_or(|(top, _)| ratio > *top) {
                best = Some((ratio, candidate));
            }
        }
        best.map(|(_, set)| set)
    }
}

/// A density over `dimension`'s values from the sets `of` (their value at
/// position `d`): a flat prior plus a kernel per set, normalised.
fn density(dimension: &Dimension, d: usize, of: &[&[usize]]) -> Vec<f64> {
    let count = dimension.values.len();
    // Wider kernels for few observations and many values.
    let width = (count as f64 / (of.len() as f64 + 1.0).sqrt() / 4.0).max(0.5);
    // The prior: one observation spread over a range's values; one per
    // value of a choice, which has no neighbours to lend it weight, so that
    // a value the early runs missed is still tried.
    let prior = if dimension.ordered {
        1.0 / count as f64
    } else {
        1.0
    };
    let mut weights = vec![prior; count];
    for set in of {
        let seen = set[d];
        for (index, weight) in weights.iter_mut().enumerate() {
            *weight += if dimension.ordered {
                let distance = (index as f64 - seen as f64) / width;
                (-0.5 * distance * distance).exp()
            } else if index == seen {
                1.0
            } else {
                0.0
            };
        }
    }
    let total: f64 = weights.iter().sum();
    weights.iter().map(|weight| weight / total).collect()
}

/// An index drawn with probability `weights[index]`.
fn draw(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let mut left = rng.random_range(0.0..1.0);
    for (index, weight) in weights.iter().enumerate() {
        if left < *weight {
            return index;
        }
        left -= weight;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> SearchSpace {
        [
            (
                "x".to_string(),
                ParamRange::Int {
                    min: 0,
                    max: 99,
                    step: 1,
                },
            ),
            (
                "y".to_string(),
                ParamRange::Int {
                    min: 0,
                    max: 99,
                    step: 1,
                },
            ),
            (
                "kind".to_string(),
                ParamRange::Choice(vec![Value::from("a"), Value::from("b"), Value::from("c")]),
            ),
        ]
        .into_iter()
        .collect()
    }

    /// Best at x = 70, y = 20, kind = b.
    fn objective(set: &Map<String, Value>) -> f64 {
        let x = set["x"].as_f64().unwrap();
        let y = set["y"].as_f64().unwrap();
        let kind = if set["kind"] == "b" { 0.0 } else { 400.0 };
        -((x - 70.0).powi(2) + (y - 20.0).powi(2)) - kind
    }

    fn best_of(search: &Tpe) -> f64 {
        let mut best = f64::MIN;
        while let Some((number, set)) = search.ask() {
            let score = objective(&set);
            best = best.max(score);
            search.tell(number, Some(score));
        }
        best
    }

    #[test]
    fn the_model_finds_better_sets_than_chance_in_as_many_runs() {
        let (mut modelled, mut random) = (Vec::new(), Vec::new());
        for seed in 0..9 {
            let spec = TpeSpec {
                space: space(),
                trials: 60,
                seed,
            };
            modelled.push(best_of(&Tpe::new(&spec)));
            let sets = super::super::optimize::random(&spec.space, 60, seed);
            random.push(sets.iter().map(objective).fold(f64::MIN, f64::max));
        }
        modelled.sort_by(f64::total_cmp);
        random.sort_by(f64::total_cmp);
        // Medians of nine seeds: 30,000 combinations, 60 runs each.
        assert!(
            modelled[4] > random[4],
            "TPE {modelled:?} vs random {random:?}"
        );
        assert!(modelled[4] > -100.0, "near the best: {modelled:?}");
    }

    #[test]
    fn a_seed_gives_the_same_sets_with_one_worker_and_no_set_twice() {
        let spec = TpeSpec {
            space: space(),
            trials: 40,
            seed: 7,
        };
        let run = || {
            let search = Tpe::new(&spec);
            let mut sets = Vec::new();
            while let Some((number, set)) = search.ask() {
                search.tell(number, Some(objective(&set)));
                sets.push(Value::Object(set).to_string());
            }
            sets
        };
        let first = run();
        assert_eq!(first, run());
        assert_eq!(first.len(), 40);
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), 40);
    }

    #[test]
    fn a_small_space_is_used_up_not_repeated() {
        let spec = TpeSpec {
            space: [(
                "x".to_string(),
                ParamRange::Int {
                    min: 1,
                    max: 4,
                    step: 1,
                },
            )]
            .into_iter()
            .collect(),
            trials: 50,
            seed: 1,
        };
        let search = Tpe::new(&spec);
        let mut seen = Vec::new();
        while let Some((number, set)) = search.ask() {
            search.tell(number, None);
            seen.push(set["x"].as_i64().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4]);
    }
}
