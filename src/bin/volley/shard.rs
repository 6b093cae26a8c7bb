//! `--shard K/N` and `--shard auto`: which share of the targets this run takes.
//!
//! `auto` reads the scheduler's environment through a lookup function (so the rules
//! are a pure function, table-tested without touching the process environment):
//! - a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (0-based) gives K - 1, and N
//!   comes from `--shards N`;
//! - a Slurm array task: `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_MIN` and
//!   `SLURM_ARRAY_TASK_MAX` or `SLURM_ARRAY_TASK_COUNT`, stepped by
//!   `SLURM_ARRAY_TASK_STEP` (default 1), so `--array=1-7:2` gives tasks 1/4…4/4.
//!   Without MIN, COUNT gives the array's size and its start is MAX − (COUNT − 1) ×
//!   STEP when MAX is set, else 0.
//!   An array that is not one evenly stepped range (`--array=1,3,8`) cannot be
//!   numbered from the environment: give `--shard K/N` explicitly.
//!
//! When both are present, the Kubernetes index wins (a pod of an Indexed Job that
//! happens to inherit Slurm variables is still numbered by its Job).
//!
//! Invariant: a resolved shard always has 1 ≤ K ≤ N.

/// What `--shard` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// `K/N` as given.
    Fixed(u64, u64),
    /// `auto`: from the scheduler's environment.
    Auto,
}

/// Parses `K/N` (1 ≤ K ≤ N) or `auto`.
pub fn parse(s: &str) -> Result<ShardArg, String> {
    if s == "auto" {
        return Ok(ShardArg::Auto);
    }
    let err = || format!("{s:?} is not K/N with 1 <= K <= N, or auto");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let (k, n) = (
        k.parse::<u64>().map_err(|_| err())?,
        n.parse::<u64>().map_err(|_| err())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(err());
    }
    Ok(ShardArg::Fixed(k, n))
}

/// The shard `(K, N)` to take, if any. `env` looks up an environment variable;
/// errors name the option and say what is missing.
pub fn resolve(
    arg: Option<ShardArg>,
    shards: Option<u64>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(u64, u64)>, String> {
    match arg {
        None if shards.is_some() => Err("--shards N is used with --shard auto".into()),
        None => Ok(None),
        Some(ShardArg::Fixed(..)) if shards.is_some() => {
            Err("--shards N is used with --shard auto, not with --shard K/N".into())
        }
        Some(ShardArg::Fixed(k, n)) => Ok(Some((k, n))),
        Some(ShardArg::Auto) => auto(shards, env).map(Some),
    }
}

fn num(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, String> {
    match env(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("--shard auto: {name}={v:?} is not a number")),
    }
}

fn auto(shards: Option<u64>, env: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64), String> {
    if let Some(index) = num(env, "JOB_COMPLETION_INDEX")? {
        let n = shards.ok_or(
            "--shard auto in a Kubernetes Indexed Job needs --shards N (the Job's completions)",
        )?;
        if n == 0 || index >= n {
            return Err(format!(
                "--shard auto: JOB_COMPLETION_INDEX={index} is not below --shards {n}"
            ));
        }
        return Ok((index + 1, n));
    }
    if let Some(id) = num(env, "SLURM_ARRAY_TASK_ID")? {
        return slurm(id, shards, env);
    }
    Err(
        "--shard auto: no scheduler found (neither SLURM_ARRAY_TASK_ID nor \
         JOB_COMPLETION_INDEX is set); give --shard K/N"
            .into(),
    )
}

fn slurm(
    id: u64,
    shards: Option<u64>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(u64, u64), String> {
    let list = "give --shard K/N explicitly for an array that is not one stepped range";
    let step = num(env, "SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
    if step == 0 {
        return Err("--shard auto: SLURM_ARRAY_TASK_STEP=0".into());
    }
    let min = match num(env, "SLURM_ARRAY_TASK_MIN")? {
        Some(min) => min,
        None => implied_min(step, env)?,
    };
    let from_max = match num(env, "SLURM_ARRAY_TASK_MAX")? {
        Some(max) if max >= min => Some((max - min) / step + 1),
        Some(max) => {
            return Err(format!(
                "--shard auto: SLURM_ARRAY_TASK_MAX={max} is below SLURM_ARRAY_TASK_MIN={min}"
            ))
        }
        None => None,
    };
    let count = num(env, "SLURM_ARRAY_TASK_COUNT")?;
    let n = match (from_max, count) {
        (Some(a), Some(c)) if a != c => {
            return Err(format!(
                "--shard auto: the array has {c} tasks but spans {a} steps; {list}"
            ))
        }
        (Some(a), _) => a,
        (None, Some(c)) => c,
        (None, None) => {
            return Err(format!(
            "--shard auto: neither SLURM_ARRAY_TASK_MAX nor SLURM_ARRAY_TASK_COUNT is set; {list}"
        ))
        }
    };
    if id < min || !(id - min).is_multiple_of(step) || (id - min) / step >= n {
        return Err(format!(
            "--shard auto: SLURM_ARRAY_TASK_ID={id} is not in the array {min}+{step}k, k < {n}; {list}"
        ));
    }
    let k = (id - min) / step + 1;
    if let Some(s) = shards {
        if s != n {
            return Err(format!(
                "--shards {s} disagrees with the Slurm array's {n} tasks"
            ));
        }
    }
    Ok((k, n))
}

/// `SLURM_ARRAY_TASK_MIN` when it is not set (Slurm exports it with COUNT and MAX;
/// a hand-made environment may give only ID and COUNT): with MAX too, the first
/// task of the stepped range that ends at MAX, MAX − (COUNT − 1) × STEP; with COUNT
/// alone, 0 (an array numbered from 0, as `--array=0-N`). With neither COUNT nor
/// MIN the array's start cannot be known.
fn implied_min(step: u64, env: &dyn Fn(&str) -> Option<String>) -> Result<u64, String> {
    let Some(count) = num(env, "SLURM_ARRAY_TASK_COUNT")? else {
        return Err(
            "--shard auto: neither SLURM_ARRAY_TASK_MIN nor SLURM_ARRAY_TASK_COUNT is set \
             (a Slurm array task has one of them); give --shard K/N"
                .into(),
        );
    };
    let Some(max) = num(env, "SLURM_ARRAY_TASK_MAX")? else {
        return Ok(0);
    };
    count
        .checked_sub(1)
        .and_then(|c| c.checked_mul(step))
        .and_then(|span| max.checked_sub(span))
        .ok_or_else(|| {
            format!(
                "--shard auto: SLURM_ARRAY_TASK_COUNT={count} tasks of step {step} cannot end \
                 at SLURM_ARRAY_TASK_MAX={max}; give --shard K/N"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vars: &[(&str, &str)], shards: Option<u64>) -> Result<(u64, u64), String> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(Some(ShardArg::Auto), shards, &|k| map.get(k).cloned()).map(|s| s.unwrap())
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse("auto"), Ok(ShardArg::Auto));
        assert_eq!(parse("2/3"), Ok(ShardArg::Fixed(2, 3)));
        for bad in ["0/3", "4/3", "1/0", "x", "1/", "/2", "-1/2", "Auto", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    /// Environment variables of one case.
    type Vars = &'static [(&'static str, &'static str)];
    const ID: &str = "SLURM_ARRAY_TASK_ID";
    const MIN: &str = "SLURM_ARRAY_TASK_MIN";
    const MAX: &str = "SLURM_ARRAY_TASK_MAX";
    const COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
    const STEP: &str = "SLURM_ARRAY_TASK_STEP";

    #[test]
    fn environments() {
        let ok: &[(Vars, Option<u64>, (u64, u64))] = &[
            // --array=1-4
            (&[(ID, "1"), (MIN, "1"), (MAX, "4")], None, (1, 4)),
            (
                &[(ID, "4"), (MIN, "1"), (MAX, "4"), (COUNT, "4")],
                None,
                (4, 4),
            ),
            // --array=0-31, by count only
            (&[(ID, "0"), (MIN, "0"), (COUNT, "32")], None, (1, 32)),
            (&[(ID, "31"), (MIN, "0"), (COUNT, "32")], Some(32), (32, 32)),
            // --array=1-7:2 → 1,3,5,7
            (
                &[(ID, "5"), (MIN, "1"), (MAX, "7"), (STEP, "2"), (COUNT, "4")],
                None,
                (3, 4),
            ),
            // --array=10-20:5%2 → 10,15,20
            (
                &[(ID, "20"), (MIN, "10"), (MAX, "20"), (STEP, "5")],
                None,
                (3, 3),
            ),
            // No MIN: ID and COUNT alone number an array from 0 (--array=0-3)
            (&[(ID, "0"), (COUNT, "4")], None, (1, 4)),
            (&[(ID, "3"), (COUNT, "4")], Some(4), (4, 4)),
            // No MIN, with MAX: the range ends at MAX (--array=1-4, --array=1-7:2)
            (&[(ID, "1"), (MAX, "4"), (COUNT, "4")], None, (1, 4)),
            (&[(ID, "4"), (MAX, "4"), (COUNT, "4")], None, (4, 4)),
            (&[(ID, "2"), (MAX, "4"), (COUNT, "3")], None, (1, 3)),
            (
                &[(ID, "5"), (MAX, "7"), (STEP, "2"), (COUNT, "4")],
                None,
                (3, 4),
            ),
            // Kubernetes, 0-based; it wins over inherited Slurm variables
            (&[("JOB_COMPLETION_INDEX", "0")], Some(8), (1, 8)),
            (
                &[
                    ("JOB_COMPLETION_INDEX", "7"),
                    (ID, "1"),
                    (MIN, "1"),
                    (MAX, "2"),
                ],
                Some(8),
                (8, 8),
            ),
        ];
        for (vars, shards, want) in ok {
            assert_eq!(run(vars, *shards), Ok(*want), "{vars:?}");
        }
        let bad: &[(Vars, Option<u64>, &str)] = &[
            (&[], None, "no scheduler"),
            (&[], Some(4), "no scheduler"),
            (&[("JOB_COMPLETION_INDEX", "0")], None, "--shards N"),
            (&[("JOB_COMPLETION_INDEX", "8")], Some(8), "not below"),
            (&[("JOB_COMPLETION_INDEX", "x")], Some(8), "not a number"),
            (
                &[("SLURM_ARRAY_TASK_ID", "3")],
                None,
                "SLURM_ARRAY_TASK_MIN",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1")],
                None,
                "neither",
            ),
            // No MIN and no COUNT: where the array starts is unknown.
            (&[(ID, "3"), (MAX, "4")], None, "SLURM_ARRAY_TASK_COUNT"),
            // No MIN, COUNT alone: a 1-based array's last task is outside 0..COUNT.
            (&[(ID, "4"), (COUNT, "4")], None, "not in the array"),
            (&[(ID, "1"), (COUNT, "4")], Some(3), "disagrees"),
            // No MIN: COUNT steps cannot end at MAX.
            (&[(ID, "1"), (MAX, "3"), (COUNT, "5")], None, "cannot end"),
            (
                &[(ID, "1"), (MAX, "3"), (STEP, "2"), (COUNT, "3")],
                None,
                "cannot end",
            ),
            (&[(ID, "1"), (MAX, "3"), (COUNT, "0")], None, "cannot end"),
            (&[(ID, "0"), (COUNT, "0")], None, "not in the array"),
            // --array=1,3,8: 3 tasks spanning 1..8
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "3"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "8"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                None,
                "--shard K/N",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "7"),
                    ("SLURM_ARRAY_TASK_STEP", "2"),
                ],
                None,
                "not in the array",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "9"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "7"),
                ],
                None,
                "not in the array",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "7"),
                ],
                None,
                "not in the array",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "4"),
                ],
                Some(3),
                "disagrees",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_MIN", "5"),
                    ("SLURM_ARRAY_TASK_MAX", "4"),
                ],
                None,
                "below",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_MAX", "4"),
                    ("SLURM_ARRAY_TASK_STEP", "0"),
                ],
                None,
                "STEP=0",
            ),
        ];
        for (vars, shards, says) in bad {
            let e = run(vars, *shards).unwrap_err();
            assert!(e.contains(says), "{vars:?}: {e}");
            assert!(e.contains("--shard"), "{vars:?}: {e}");
        }
    }

    #[test]
    fn fixed_and_none() {
        let env = |_: &str| None;
        assert_eq!(resolve(None, None, &env), Ok(None));
        assert_eq!(
            resolve(Some(ShardArg::Fixed(2, 5)), None, &env),
            Ok(Some((2, 5)))
        );
        assert!(resolve(None, Some(3), &env)
            .unwrap_err()
            .contains("--shards"));
        assert!(resolve(Some(ShardArg::Fixed(1, 2)), Some(2), &env).is_err());
    }
}
