//! Per-endpoint service-time distributions fitted from a replay record, for
//! structure-only replay and `meshsim fit`.
//!
//! The sample of an endpoint (service, operation) is the self time of each
//! of its calls. The fit: a constant when the values are all equal (or
//! there is one); otherwise a lognormal by maximum likelihood (mu and sigma
//! of ln(value / 1 ms), the `lognormal_params` form), in a mixture with a
//! constant 0 when some self times are 0 (a pure pass-through call).

use std::collections::BTreeMap;

use crate::record::ReplayRecord;

/// One endpoint's sample and fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// Calls seen.
    pub count: usize,
    /// Mean self time (ns).
    pub mean_ns: f64,
    /// Median and 99th percentile (nearest rank, ns).
    pub p50_ns: u64,
    /// 99th percentile (nearest rank, ns).
    pub p99_ns: u64,
    /// The fitted distribution, as a scenario `service_time` value.
    pub dist: toml::Value,
    /// The same, as one line of text.
    pub describe: String,
}

/// Fits every (service, endpoint) of the record.
pub fn fit(rec: &ReplayRecord) -> BTreeMap<(String, String), Fitted> {
    let mut samples: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in &rec.requests {
        for (_, n) in r.root.walk() {
            samples
                .entry((n.service.clone(), n.endpoint.clone()))
                .or_default()
                .push(n.self_ns);
        }
    }
    samples
        .into_iter()
        .map(|(k, v)| (k, fit_sample(v)))
        .collect()
}

/// Fits one sample (not empty).
pub fn fit_sample(mut v: Vec<u64>) -> Fitted {
    v.sort_unstable();
    let n = v.len();
    let rank = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let (p50, p99) = (rank(0.5), rank(0.99));
    let constant = |ns: u64| {
        let mut t = toml::Table::new();
        t.insert("dist".into(), "constant".into());
        t.insert("value".into(), format!("{ns}ns").into());
        toml::Value::Table(t)
    };
    let positive: Vec<f64> = v
        .iter()
        .filter(|&&x| x > 0)
        .map(|&x| x as f64 / 1e6)
        .collect();
    let (dist, describe) = if v[0] == v[n - 1] || positive.len() < 2 {
        let c = mean.round() as u64;
        (constant(c), format!("constant {:.3} ms", c as f64 / 1e6))
    } else {
        let logs: Vec<f64> = positive
            .iter()
            .map(|&x| meshsim_core::math::ln(x))
            .collect();
        let mu = logs.iter().sum::<f64>() / logs.len() as f64;
        let var = logs.iter().map(|l| (l - mu) * (l - mu)).sum::<f64>() / logs.len() as f64;
        let sigma = var.sqrt();
        let mut ln = toml::Table::new();
        ln.insert("dist".into(), "lognormal_params".into());
        ln.insert("mu".into(), round6(mu).into());
        ln.insert("sigma".into(), round6(sigma).into());
        ln.insert("unit".into(), "1ms".into());
        let ln = toml::Value::Table(ln);
        let zeros = n - positive.len();
        let text = format!("lognormal mu={mu:.3} sigma={sigma:.3} (ln ms)");
        if zeros == 0 {
            (ln, text)
        } else {
            let part = |w: f64, d: toml::Value| {
                let mut t = toml::Table::new();
                t.insert("weight".into(), round6(w).into());
                t.insert("dist".into(), d);
                toml::Value::Table(t)
            };
            let mut m = toml::Table::new();
            m.insert("dist".into(), "mixture".into());
            m.insert(
                "parts".into(),
                toml::Value::Array(vec![
                    part(zeros as f64 / n as f64, constant(0)),
                    part(positive.len() as f64 / n as f64, ln),
                ]),
            );
            (
                toml::Value::Table(m),
                format!("{:.0}% 0, else {text}", 100.0 * zeros as f64 / n as f64),
            )
        }
    };
    Fitted {
        count: n,
        mean_ns: mean,
        p50_ns: p50,
        p99_ns: p99,
        dist,
        describe,
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
