//! The rank controller: per-matrix ranks that minimise recurrent MACs under a
//! predicted output-error budget (or minimise error under a MAC budget), by
//! greedy marginal allocation over per-matrix error curves, with hysteresis,
//! a minimum dwell, and a deadline guard.
//!
//! Errors of different matrices (and cells) add in quadrature (DESIGN §1), so
//! each matrix contributes a curve `e²(k)` over its candidate ranks, measured
//! once per probe; a decision is then a cheap greedy walk over the curves.

/// One matrix the controller allocates a rank to.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Candidate ranks, descending (first: n, dense).
    pub ranks: Vec<usize>,
    /// Recurrent MACs per frame at each candidate.
    pub macs: Vec<usize>,
    /// Predicted squared output error at each candidate (others at full).
    pub err2: Vec<f64>,
    /// Current candidate index.
    pub current: usize,
    /// Per candidate k0: the best lowering move from k0 with the budget
    /// ignored, `(candidate, MACs saved per error added)` (`None`: no lower
    /// candidate saves MACs). A cache of [`allocate`]'s search, valid for
    /// the `err2` it was made from: call [`Slot::update_moves`] after any
    /// change of `err2` (an empty table makes `allocate` search in full).
    pub moves: Vec<Option<(usize, f64)>>,
}

impl Slot {
    /// A slot with candidate `ranks` (descending, first dense) costing
    /// `macs` each, zero predicted error, at the dense candidate. Setup only:
    /// allocates.
    pub fn new(ranks: Vec<usize>, macs: Vec<usize>) -> Self {
        let mut s = Self {
            err2: vec![0.0; ranks.len()],
            moves: vec![None; ranks.len()],
            ranks,
            macs,
            current: 0,
        };
        s.update_moves();
        s
    }

    /// Recomputes [`Slot::moves`] from `err2`: O(candidates²), once per new
    /// error curve. No allocation.
    pub fn update_moves(&mut self) {
        let len = self.ranks.len();
        self.moves.resize(len, None);
        for k0 in 0..len {
            self.moves[k0] = best_move(self, k0, |_| true);
        }
    }
}

/// The best lowering move of `s` from candidate `k0` among those whose
/// error increase `fits`: the most MACs saved per error added, the first
/// candidate on ties.
fn best_move(s: &Slot, k0: usize, fits: impl Fn(f64) -> bool) -> Option<(usize, f64)> {
    let mut b: Option<(usize, f64)> = None;
    for k in k0 + 1..s.ranks.len() {
        let save = s.macs[k0] as f64 - s.macs[k] as f64;
        if save <= 0.0 {
            continue;
        }
        let de = (s.err2[k] - s.err2[k0]).max(0.0);
        if !fits(de) {
            continue;
        }
        let score = save / de.max(1e-18);
        if b.is_none_or(|b| score > b.1) {
            b = Some((k, score));
        }
    }
    b
}

/// Greedy marginal allocation. `plan[s]` receives a candidate index per slot.
/// With `cap_macs = None`, lowers ranks while the summed squared error stays
/// within `budget²`; with `Some(cap)`, lowers until MACs ≤ cap choosing the
/// cheapest error per MAC saved. `best` is scratch of one entry per slot.
/// No allocation.
///
/// Each step takes the move with the most MACs saved per error added, over
/// every slot and every lower candidate (the first such move in slot, then
/// candidate order, on ties). A slot's best move only changes when that
/// slot moves or when its best stops fitting the budget (the summed error
/// only grows, so what fits only shrinks), so each slot's best is kept in
/// `best` and searched again only then — answered from the slot's cached
/// unconstrained best ([`Slot::moves`]) when that fits: the same plan as
/// searching every slot at every step (`allocate_reference` in the tests),
/// in a fraction of the time.
pub fn allocate(
    slots: &[Slot],
    budget: f64,
    cap_macs: Option<usize>,
    plan: &mut [usize],
    best: &mut [Option<(usize, f64)>],
) {
    plan.iter_mut().for_each(|p| *p = 0);
    let mut err2: f64 = slots.iter().map(|s| s.err2[0]).sum();
    let mut macs: usize = slots.iter().map(|s| s.macs[0]).sum();
    let limit2 = budget * budget;
    let fits = |err2: f64, de: f64| cap_macs.is_some() || err2 + de <= limit2;
    let slot_best = |s: &Slot, k0: usize, err2: f64| {
        // The cached unconstrained best is the constrained best whenever it
        // fits: any other fitting move scores lower or comes later.
        match s.moves.get(k0) {
            Some(None) => return None,
            Some(Some((k, score))) if fits(err2, (s.err2[*k] - s.err2[k0]).max(0.0)) => {
                return Some((*k, *score));
            }
            _ => {}
        }
        best_move(s, k0, |de| fits(err2, de))
    };
    for (si, s) in slots.iter().enumerate() {
        best[si] = slot_best(s, 0, err2);
    }
    loop {
        if let Some(cap) = cap_macs
            && macs <= cap
        {
            return;
        }
        let mut pick: Option<(usize, usize, f64)> = None;
        for (si, s) in slots.iter().enumerate() {
            if let Some((k, _)) = best[si]
                && !fits(err2, (s.err2[k] - s.err2[plan[si]]).max(0.0))
            {
                best[si] = slot_best(s, plan[si], err2);
            }
            if let Some((k, score)) = best[si]
                && pick.is_none_or(|p| score > p.2)
            {
                pick = Some((si, k, score));
            }
        }
        let Some((si, k, _)) = pick else { return };
        let s = &slots[si];
        err2 += (s.err2[k] - s.err2[plan[si]]).max(0.0);
        macs = macs + s.macs[k] - s.macs[plan[si]];
        plan[si] = k;
        best[si] = slot_best(s, k, err2);
    }
}

/// How far the current plan's predicted error may exceed the error budget
/// before the controller raises ranks: successive probes of a stationary
/// input scatter their estimate by about this much, and reacting to that
/// scatter would move ranks back and forth.
pub const OVER_BUDGET_TOLERANCE: f64 = 0.2;

/// Whether the current plan is over its budget: predicted error above
/// `budget · (1 + OVER_BUDGET_TOLERANCE)`, or MACs above `cap_macs`.
pub fn over_budget(slots: &[Slot], budget: f64, cap_macs: Option<usize>) -> bool {
    let (e, m) = slots.iter().fold((0.0, 0), |(e, m), s| {
        (e + s.err2[s.current], m + s.macs[s.current])
    });
    match cap_macs {
        None => e > (budget * (1.0 + OVER_BUDGET_TOLERANCE)).powi(2),
        Some(cap) => m > cap,
    }
}

/// The smallest repair of an over-budget plan: from the current ranks, raise
/// one matrix at a time — the step with the most error removed per MAC
/// added — until the predicted error is within `budget`. Matrices that need
/// no change keep their rank, so a repair moves as little as possible.
pub fn raise_to_budget(slots: &[Slot], budget: f64, plan: &mut [usize]) {
    for (p, s) in plan.iter_mut().zip(slots) {
        *p = s.current;
    }
    let limit2 = budget * budget;
    let mut err2: f64 = slots.iter().zip(plan.iter()).map(|(s, &k)| s.err2[k]).sum();
    while err2 > limit2 {
        let mut best: Option<(usize, usize, f64)> = None;
        for (si, s) in slots.iter().enumerate() {
            let k0 = plan[si];
            for k in 0..k0 {
                let gain = s.err2[k0] - s.err2[k];
                if gain <= 0.0 {
                    continue;
                }
                let cost = (s.macs[k] as f64 - s.macs[k0] as f64).max(1.0);
                let score = gain / cost;
                if best.is_none_or(|b| score > b.2) {
                    best = Some((si, k, score));
                }
            }
        }
        let Some((si, k, _)) = best else { return };
        err2 -= slots[si].err2[plan[si]] - slots[si].err2[k];
        plan[si] = k;
    }
}

/// Summed squared error and MACs of a plan.
pub fn plan_cost(slots: &[Slot], plan: &[usize]) -> (f64, usize) {
    slots
        .iter()
        .zip(plan)
        .fold((0.0, 0), |(e, m), (s, &k)| (e + s.err2[k], m + s.macs[k]))
}

/// Hysteresis: whether to switch from the current plan to `proposed`.
/// Switch at once when the current plan is over budget (see
/// [`over_budget`]; with an error budget, `proposed` should then be the
/// [`raise_to_budget`] repair); lower
/// only after `dwell_ok` and when the saving is at least `min_saving` of the
/// dense recurrent MACs.
pub fn should_switch(
    slots: &[Slot],
    proposed: &[usize],
    budget: f64,
    cap_macs: Option<usize>,
    dwell_ok: bool,
    min_saving: f64,
) -> bool {
    let (cur_e, cur_m) = slots.iter().fold((0.0, 0), |(e, m), s| {
        (e + s.err2[s.current], m + s.macs[s.current])
    });
    let (new_e, new_m) = plan_cost(slots, proposed);
    let dense: usize = slots.iter().map(|s| s.macs[0]).sum();
    if slots.iter().zip(proposed).all(|(s, &k)| s.current == k) {
        return false;
    }
    if over_budget(slots, budget, cap_macs) {
        return true;
    }
    let saving = cur_m as f64 - new_m as f64;
    let better_error =
        cap_macs.is_some() && new_e < cur_e * 0.8 && new_m <= cap_macs.unwrap_or(usize::MAX);
    dwell_ok && (saving >= min_saving * dense as f64 || better_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic model whose error curve is known: e²(r) = (c·(n−r)/n)² at
    /// factored ranks, 0 at full.
    fn slot(n: usize, c: f64) -> Slot {
        let ranks = super::super::perturbation::candidate_ranks(n, 4);
        let macs = ranks
            .iter()
            .map(|&r| super::super::perturbation::matrix_macs(n, r))
            .collect();
        let err2 = ranks
            .iter()
            .map(|&r| {
                if r == n {
                    0.0
                } else {
                    (c * (n - r) as f64 / n as f64).powi(2)
                }
            })
            .collect();
        let mut s = Slot::new(ranks, macs);
        s.err2 = err2;
        s.update_moves();
        s
    }

    /// The plain greedy walk: every slot and every lower candidate at every
    /// step (the form `allocate` must match exactly).
    fn allocate_reference(
        slots: &[Slot],
        budget: f64,
        cap_macs: Option<usize>,
        plan: &mut [usize],
    ) {
        plan.iter_mut().for_each(|p| *p = 0);
        let mut err2: f64 = slots.iter().map(|s| s.err2[0]).sum();
        let mut macs: usize = slots.iter().map(|s| s.macs[0]).sum();
        let limit2 = budget * budget;
        loop {
            if let Some(cap) = cap_macs
                && macs <= cap
            {
                return;
            }
            let mut best: Option<(usize, usize, f64)> = None;
            for (si, s) in slots.iter().enumerate() {
                let k0 = plan[si];
                for k in k0 + 1..s.ranks.len() {
                    let save = s.macs[k0] as f64 - s.macs[k] as f64;
                    if save <= 0.0 {
                        continue;
                    }
                    let de = (s.err2[k] - s.err2[k0]).max(0.0);
                    if cap_macs.is_none() && err2 + de > limit2 {
                        continue;
                    }
                    let score = save / de.max(1e-18);
                    if best.is_none_or(|b| score > b.2) {
                        best = Some((si, k, score));
                    }
                }
            }
            let Some((si, k, _)) = best else { return };
            let s = &slots[si];
            err2 += (s.err2[k] - s.err2[plan[si]]).max(0.0);
            macs = macs + s.macs[k] - s.macs[plan[si]];
            plan[si] = k;
        }
    }

    #[test]
    fn allocation_matches_the_plain_greedy_walk() {
        // Random, non-monotone error curves (a probe's estimates scatter),
        // ties included, 1–8 slots of sizes 16–128, both budget kinds.
        let mut seed = 11u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..400 {
            let count = 1 + case % 8;
            let slots: Vec<Slot> = (0..count)
                .map(|_| {
                    let n = [16, 32, 64, 128][(next() * 4.0) as usize];
                    let mut s = slot(n, 0.01 + 0.1 * next());
                    for e in s.err2.iter_mut().skip(1) {
                        *e = if next() < 0.1 {
                            0.0
                        } else {
                            *e * (0.3 + 1.4 * next())
                        };
                    }
                    // Half the cases use the move cache, half search in full.
                    if case % 2 == 0 {
                        s.update_moves();
                    } else {
                        s.moves.clear();
                    }
                    s
                })
                .collect();
            let dense: usize = slots.iter().map(|s| s.macs[0]).sum();
            let budget = 0.2 * next();
            let cap = (next() < 0.3).then(|| (dense as f64 * next()) as usize);
            let (mut fast, mut plain) = (vec![0; count], vec![0; count]);
            allocate(&slots, budget, cap, &mut fast, &mut vec![None; count]);
            allocate_reference(&slots, budget, cap, &mut plain);
            assert_eq!(fast, plain, "case {case}: budget {budget}, cap {cap:?}");
        }
    }

    #[test]
    fn respects_the_error_budget_and_saves_macs() {
        let slots = vec![slot(128, 0.02), slot(128, 0.08)];
        let mut plan = vec![0; 2];
        for budget in [0.01, 0.03, 0.06, 0.1] {
            allocate(&slots, budget, None, &mut plan, &mut [None; 2]);
            let (e2, macs) = plan_cost(&slots, &plan);
            assert!(
                e2.sqrt() <= budget + 1e-12,
                "budget {budget}: error {}",
                e2.sqrt()
            );
            // The cheap-to-truncate matrix goes lower than the expensive one.
            assert!(
                slots[0].ranks[plan[0]] <= slots[1].ranks[plan[1]],
                "budget {budget}: {plan:?}"
            );
            if budget >= 0.03 {
                assert!(macs < 2 * 128 * 128, "budget {budget}: no saving");
            }
        }
        // Brute force over both slots: greedy is within one step of optimal MACs.
        allocate(&slots, 0.03, None, &mut plan, &mut [None; 2]);
        let (_, greedy) = plan_cost(&slots, &plan);
        let mut best = usize::MAX;
        for a in 0..slots[0].ranks.len() {
            for b in 0..slots[1].ranks.len() {
                let (e, m) = plan_cost(&slots, &[a, b]);
                if e.sqrt() <= 0.03 {
                    best = best.min(m);
                }
            }
        }
        assert!(
            greedy as f64 <= best as f64 * 1.1,
            "greedy {greedy} vs best {best}"
        );
    }

    #[test]
    fn compute_budget_meets_the_cap() {
        let slots = vec![slot(64, 0.02), slot(64, 0.08)];
        let mut plan = vec![0; 2];
        let cap = 64 * 64 / 2;
        allocate(&slots, 0.0, Some(cap), &mut plan, &mut [None; 2]);
        assert!(plan_cost(&slots, &plan).1 <= cap);
    }

    #[test]
    fn hysteresis_holds_a_plan_and_raises_at_once() {
        let mut slots = vec![slot(128, 0.05)];
        let mut plan = vec![0];
        allocate(&slots, 0.03, None, &mut plan, &mut [None]);
        slots[0].current = plan[0];
        // Same input again: no switch.
        let mut again = vec![0];
        allocate(&slots, 0.03, None, &mut again, &mut [None]);
        assert!(!should_switch(&slots, &again, 0.03, None, true, 0.05));
        // One candidate lower saves 2·n·4 MACs (6 % of dense): held when the
        // threshold asks for 10 %, taken at 5 %.
        let near = vec![plan[0] + 1];
        assert!(!should_switch(&slots, &near, 1.0, None, true, 0.10));
        assert!(should_switch(&slots, &near, 1.0, None, true, 0.05));
        // The budget tightens: the current plan is over it, raise at once even without dwell.
        let mut tight = vec![0];
        allocate(&slots, 0.005, None, &mut tight, &mut [None]);
        assert!(should_switch(&slots, &tight, 0.005, None, false, 0.05));
        // Lowering needs the dwell.
        slots[0].current = 0;
        assert!(!should_switch(&slots, &plan, 0.03, None, false, 0.05));
        assert!(should_switch(&slots, &plan, 0.03, None, true, 0.05));
    }

    #[test]
    fn an_over_budget_plan_is_repaired_minimally_and_scatter_is_tolerated() {
        let mut slots = vec![slot(128, 0.02), slot(128, 0.08), slot(128, 0.04)];
        let mut plan = vec![0; 3];
        allocate(&slots, 0.03, None, &mut plan, &mut [None; 3]);
        for (s, &k) in slots.iter_mut().zip(&plan) {
            s.current = k;
        }
        let scale = |s: &mut Slot, f: f64| s.err2.iter_mut().for_each(|e| *e *= f * f);
        // The matrix carrying most of the error: a new probe finds it worse.
        let w = (0..3)
            .max_by(|&a, &b| slots[a].err2[plan[a]].total_cmp(&slots[b].err2[plan[b]]))
            .unwrap();
        assert!(slots[w].err2[plan[w]] > 0.0);
        // 10 % worse: within the tolerance, nothing moves.
        scale(&mut slots[w], 1.1);
        assert!(!over_budget(&slots, 0.03, None));
        // Three times as bad: over. The repair raises that matrix only.
        scale(&mut slots[w], 3.0 / 1.1);
        assert!(over_budget(&slots, 0.03, None));
        let mut repaired = vec![0; 3];
        raise_to_budget(&slots, 0.03, &mut repaired);
        for k in 0..3 {
            if k == w {
                assert!(repaired[k] < plan[k], "matrix {k} not raised");
            } else {
                assert_eq!(repaired[k], plan[k], "matrix {k} moved");
            }
        }
        assert!(plan_cost(&slots, &repaired).0 <= 0.03 * 0.03);
    }
}
