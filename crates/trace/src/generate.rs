//! Synthetic topologies: a tree, a chain or a random DAG of N services,
//! written as a scenario file, in the spirit of isotope's topology
//! generator (istio/tools, `isotope/create_tree_topology.py`): every
//! service does a little work, then calls its children.
//!
//! Services are numbered in topological order (`s0` is the entry, a
//! service only calls services with higher numbers), so every generated
//! graph is acyclic. The number of calls one request makes is the number of
//! paths from the entry, weighted by the call probabilities: in a tree it
//! is at most the number of services, in a DAG it can grow exponentially
//! with depth, so [`generate`] computes it and refuses graphs above
//! [`MAX_CALLS_PER_REQUEST`].

use std::fmt::Write as _;

/// The shape of the call graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Service `i > 0` is called by service `(i − 1) / fanout`: a complete
    /// `fanout`-ary tree filled level by level.
    Tree,
    /// `s0 → s1 → … → s(N−1)`.
    Chain,
    /// Every service `i > 0` gets one caller drawn uniformly from the
    /// services before it (so all are reachable), then `extra_edges` more
    /// edges join random pairs `a < b`.
    Dag,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Shape, String> {
        match s {
            "tree" => Ok(Shape::Tree),
            "chain" => Ok(Shape::Chain),
            "dag" => Ok(Shape::Dag),
            _ => Err(format!(
                "unknown topology {s:?}; expected \"tree\", \"chain\" or \"dag\""
            )),
        }
    }
}

/// What to generate. [`Options::default`] gives a 10-service binary tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The graph's shape.
    pub shape: Shape,
    /// Number of services (at least 1).
    pub services: u32,
    /// Children per service in a tree (at least 1).
    pub fanout: u32,
    /// Extra edges of a random DAG beyond its spanning tree.
    pub extra_edges: u32,
    /// Whether a service calls its children all at once (one parallel
    /// step) or one after the other.
    pub parallel: bool,
    /// Probability that each call is made (0 < p ≤ 1).
    pub call_probability: f64,
    /// Instances per service.
    pub instances: u32,
    /// Workers per instance (a worker is held through the downstream calls).
    pub concurrency: u32,
    /// Mean of each service's exponential service time, in microseconds.
    pub service_time_us: f64,
    /// One-way network latency, in microseconds (0: none).
    pub network_us: f64,
    /// Open-loop request rate at the entry service.
    pub rate: f64,
    /// Simulated seconds (warm-up included).
    pub duration_s: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// The scenario's seed; it also draws a DAG's edges.
    pub seed: u64,
    /// Balancer kind of every sidecar (a name from `meshsim algorithms`).
    pub balancer: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::Tree,
            services: 10,
            fanout: 2,
            extra_edges: 0,
            parallel: true,
            call_probability: 1.0,
            instances: 2,
            concurrency: 64,
            service_time_us: 100.0,
            network_us: 50.0,
            rate: 1000.0,
            duration_s: 10.0,
            warmup_s: 1.0,
            seed: 1,
            balancer: "p2c".into(),
        }
    }
}

/// The most calls per request [`generate`] accepts.
pub const MAX_CALLS_PER_REQUEST: f64 = 1e6;

/// A generated topology: the scenario text and what it implies.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The scenario file (TOML).
    pub toml: String,
    /// `edges[i]`: the services service `i` calls, in order.
    pub edges: Vec<Vec<u32>>,
    /// Expected calls per request (the entry's call from the client
    /// included): paths from the entry weighted by call probabilities.
    pub calls_per_request: f64,
}

/// Why options cannot make a scenario: the message says what is wrong and
/// what is expected.
#[derive(Debug, PartialEq)]
pub struct GenerateError(pub String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenerateError {}

/// The edges of the graph `o` describes (without writing a scenario).
pub fn edges(o: &Options) -> Vec<Vec<u32>> {
    let n = o.services as usize;
    let mut edges: Vec<Vec<u32>> = vec![Vec::new(); n];
    match o.shape {
        Shape::Tree => {
            let f = o.fanout.max(1) as usize;
            for i in 1..n {
                edges[(i - 1) / f].push(i as u32);
            }
        }
        Shape::Chain => {
            for i in 1..n {
                edges[i - 1].push(i as u32);
            }
        }
        Shape::Dag => {
            let mut rng = SplitMix(o.seed ^ 0x6765_6e65_7261_7465);
            for i in 1..n {
                let parent = rng.below(i as u64) as usize;
                edges[parent].push(i as u32);
            }
            if n >= 2 {
                // Bounded attempts: a dense graph may not have room for
                // every extra edge.
                let mut added = 0;
                let mut tries = 0u64;
                while added < o.extra_edges && tries < 100 * u64::from(o.extra_edges) + 100 {
                    tries += 1;
                    let a = rng.below(n as u64 - 1) as usize;
                    let b = a + 1 + rng.below((n - a - 1) as u64) as usize;
                    if !edges[a].contains(&(b as u32)) {
                        edges[a].push(b as u32);
                        added += 1;
                    }
                }
                // A graph too dense for random draws to find the rest: the
                // rest drawn from the pairs still free, so the DAG has the
                // edges asked for whenever there is room.
                if added < o.extra_edges {
                    let mut free: Vec<(usize, usize)> = (0..n)
                        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                        .filter(|&(a, b)| !edges[a].contains(&(b as u32)))
                        .collect();
                    while added < o.extra_edges && !free.is_empty() {
                        let k = rng.below(free.len() as u64) as usize;
                        let (a, b) = free.swap_remove(k);
                        edges[a].push(b as u32);
                        added += 1;
                    }
                }
                for e in &mut edges {
                    e.sort_unstable();
                }
            }
        }
    }
    edges
}

/// Expected calls per request: `visits[0] = 1` (the client's call), and each
/// edge `a → b` adds `visits[a] × p` to `b` (services are in topological order).
pub fn calls_per_request(edges: &[Vec<u32>], p: f64) -> f64 {
    let mut visits = vec![0.0f64; edges.len()];
    if let Some(v) = visits.first_mut() {
        *v = 1.0;
    }
    for a in 0..edges.len() {
        for &b in &edges[a] {
            visits[b as usize] += visits[a] * p;
        }
    }
    visits.iter().sum()
}

/// Writes the scenario for `o`.
pub fn generate(o: &Options) -> Result<Generated, GenerateError> {
    let bad = |what: &str| Err(GenerateError(what.to_owned()));
    if o.services == 0 {
        return bad("services: 0 services; expected at least 1");
    }
    if o.services > 100_000 {
        return bad("services: more than 100,000; expected at most 100000");
    }
    if o.shape == Shape::Tree && o.fanout == 0 {
        return bad("fanout: 0; a tree needs at least 1 child per service");
    }
    if !(o.call_probability > 0.0 && o.call_probability <= 1.0) {
        return Err(GenerateError(format!(
            "call probability: {} is not in (0, 1]",
            o.call_probability
        )));
    }
    if o.instances == 0 || o.concurrency == 0 {
        return bad("instances and concurrency: expected at least 1 each");
    }
    if !(o.rate > 0.0 && o.rate.is_finite()) {
        return Err(GenerateError(format!(
            "rate: {} is not a positive request rate",
            o.rate
        )));
    }
    let valid_time = o.service_time_us > 0.0 && o.service_time_us.is_finite();
    let valid_network = o.network_us.is_finite() && o.network_us >= 0.0;
    if !(valid_time && valid_network) {
        return bad("service time must be positive and network latency not negative");
    }
    if !(o.duration_s > o.warmup_s && o.warmup_s >= 0.0) {
        return Err(GenerateError(format!(
            "duration {} s must exceed the warm-up {} s",
            o.duration_s, o.warmup_s
        )));
    }
    // Edges go from a service to a later one: n(n − 1)/2 in all, n − 1 of
    // them the spanning tree's.
    let n = u64::from(o.services);
    let room = (n - 1) * n.saturating_sub(2) / 2;
    // Every edge is a call of some request's tree, so a graph of more than
    // 10⁶ edges is past the calls-per-request limit below at probability
    // 1 and a huge file at any: refused before it is built.
    if o.shape == Shape::Dag && o.extra_edges > 1_000_000 {
        return Err(GenerateError(format!(
            "extra edges: {}; expected at most 1000000",
            o.extra_edges
        )));
    }
    if o.shape == Shape::Dag && u64::from(o.extra_edges) > room {
        return Err(GenerateError(format!(
            "extra edges: {}; a DAG of {} services has room for {room} beyond its spanning tree",
            o.extra_edges, o.services
        )));
    }
    let edges = edges(o);
    let calls = calls_per_request(&edges, o.call_probability);
    if calls > MAX_CALLS_PER_REQUEST {
        return Err(GenerateError(format!(
            "this graph makes {calls:.3e} calls per request (paths from the entry); \
             expected at most {MAX_CALLS_PER_REQUEST:e}: use fewer extra edges or a lower call probability"
        )));
    }
    let width = (o.services - 1).to_string().len();
    let name = |i: u32| format!("s{i:0width$}");
    let shape = match o.shape {
        Shape::Tree => format!("a {}-ary tree", o.fanout),
        Shape::Chain => "a chain".into(),
        Shape::Dag => format!("a random DAG with {} extra edges", o.extra_edges),
    };
    let mut t = String::new();
    let w = &mut t;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "# Generated by `meshsim generate`: {shape} of {} services, {} calls,\n\
         # {calls:.1} calls per request on average. Seed {}.",
        o.services,
        if o.parallel { "parallel" } else { "sequential" },
        o.seed
    );
    let _ = writeln!(
        w,
        "\n[run]\nduration = \"{}s\"\nwarmup = \"{}s\"\nseed = {}\n",
        o.duration_s, o.warmup_s, o.seed
    );
    let _ = writeln!(
        w,
        "[workload]\nrate = {}\nentry = \"{}\"\n",
        o.rate,
        name(0)
    );
    if o.network_us > 0.0 {
        let _ = writeln!(
            w,
            "[network]\nlatency = {{ dist = \"constant\", value = \"{}us\" }}\n",
            o.network_us
        );
    }
    let _ = writeln!(
        w,
        "[mesh.defaults]\nbalancer = {{ kind = \"{}\" }}\n",
        o.balancer
    );
    let call = |c: u32| {
        if o.call_probability < 1.0 {
            format!(
                "{{ service = \"{}\", probability = {} }}",
                name(c),
                o.call_probability
            )
        } else {
            format!("{{ service = \"{}\" }}", name(c))
        }
    };
    for (i, out) in edges.iter().enumerate() {
        let _ = writeln!(
            w,
            "[[services]]\nname = \"{}\"\ninstances = {}\nconcurrency = {}\n\
             service_time = {{ dist = \"exponential\", mean = \"{}us\" }}",
            name(i as u32),
            o.instances,
            o.concurrency,
            o.service_time_us
        );
        if !out.is_empty() {
            let list: Vec<String> = out.iter().map(|&c| call(c)).collect();
            if o.parallel && out.len() > 1 {
                let _ = writeln!(w, "calls = [{{ parallel = [{}] }}]", list.join(", "));
            } else {
                let _ = writeln!(w, "calls = [{}]", list.join(", "));
            }
        }
        let _ = writeln!(w);
    }
    Ok(Generated {
        toml: t,
        edges,
        calls_per_request: calls,
    })
}

/// SplitMix64 (Steele, Lea & Flood, 2014): enough to draw a DAG's edges
/// reproducibly without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (the bias is
    /// below 2⁻⁴⁰ for the n used here, immaterial for a topology).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(g: &Generated) -> meshsim_scenario::Scenario {
        let sc = meshsim_scenario::Scenario::from_toml(&g.toml, "generated.toml")
            .unwrap_or_else(|e| panic!("{e}\n{}", g.toml));
        let problems = sc.validate();
        assert!(problems.is_empty(), "{problems:?}");
        sc
    }

    #[test]
    fn a_tree_has_every_service_once_and_one_call_each() {
        let o = Options {
            services: 100,
            fanout: 3,
            ..Options::default()
        };
        let g = generate(&o).unwrap();
        let sc = parse(&g);
        assert_eq!(sc.services.len(), 100);
        // Every service but the entry has exactly one caller.
        let mut callers = [0u32; 100];
        for out in &g.edges {
            assert!(out.len() <= 3);
            for &c in out {
                callers[c as usize] += 1;
            }
        }
        assert_eq!(callers[0], 0);
        assert!(callers[1..].iter().all(|&c| c == 1));
        // A tree visits each service once per request.
        assert_eq!(g.calls_per_request, 100.0);
    }

    #[test]
    fn a_chain_calls_in_order_and_halves_with_probability() {
        let o = Options {
            shape: Shape::Chain,
            services: 4,
            call_probability: 0.5,
            ..Options::default()
        };
        let g = generate(&o).unwrap();
        parse(&g);
        assert_eq!(g.edges, vec![vec![1], vec![2], vec![3], vec![]]);
        // 1 + 1/2 + 1/4 + 1/8
        assert_eq!(g.calls_per_request, 1.875);
    }

    /// A complete DAG is reachable exactly (random draws alone would miss
    /// the last free pairs); one edge more is refused with the room left.
    #[test]
    fn a_dag_gets_every_extra_edge_there_is_room_for() {
        for n in [2_u32, 3, 12] {
            let room = (n - 1) * (n.saturating_sub(2)) / 2;
            let o = Options {
                shape: Shape::Dag,
                services: n,
                extra_edges: room,
                ..Options::default()
            };
            let g = generate(&o).unwrap();
            let n_edges: u32 = g.edges.iter().map(|e| e.len() as u32).sum();
            assert_eq!(n_edges, n * (n - 1) / 2, "complete DAG of {n}");
            let e = generate(&Options {
                extra_edges: room + 1,
                ..o
            })
            .unwrap_err();
            assert!(e.0.contains(&format!("has room for {room}")), "{e}");
        }
        let e = generate(&Options {
            shape: Shape::Dag,
            services: 100_000,
            extra_edges: 1_000_001,
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.0.contains("at most 1000000"), "{e}");
    }

    #[test]
    fn a_dag_is_acyclic_reachable_reproducible_and_counts_paths() {
        let o = Options {
            shape: Shape::Dag,
            services: 50,
            extra_edges: 20,
            seed: 9,
            ..Options::default()
        };
        let g = generate(&o).unwrap();
        parse(&g);
        assert_eq!(
            g.edges,
            generate(&o).unwrap().edges,
            "same seed, same graph"
        );
        let n_edges: usize = g.edges.iter().map(Vec::len).sum();
        assert_eq!(n_edges, 49 + 20);
        for (a, out) in g.edges.iter().enumerate() {
            assert!(out.iter().all(|&b| b as usize > a), "edges go forward");
        }
        // Count paths from the entry by brute force and compare.
        fn paths(e: &[Vec<u32>], i: usize) -> f64 {
            1.0 + e[i].iter().map(|&c| paths(e, c as usize)).sum::<f64>()
        }
        assert_eq!(g.calls_per_request, paths(&g.edges, 0));
        let other = generate(&Options { seed: 10, ..o }).unwrap();
        assert_ne!(g.edges, other.edges);
    }

    #[test]
    fn a_thousand_services_parse() {
        let o = Options {
            services: 1000,
            fanout: 10,
            instances: 1,
            ..Options::default()
        };
        let sc = parse(&generate(&o).unwrap());
        assert_eq!(sc.services.len(), 1000);
        assert_eq!(sc.services[999].name, "s999");
    }

    #[test]
    fn bad_options_say_what_is_expected() {
        let e = generate(&Options {
            services: 0,
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.0.contains("at least 1"), "{e}");
        let e = generate(&Options {
            call_probability: 1.5,
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.0.contains("(0, 1]"), "{e}");
        // A dense DAG explodes in paths.
        let e = generate(&Options {
            shape: Shape::Dag,
            services: 200,
            extra_edges: 5000,
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.0.contains("calls per request"), "{e}");
        assert!("star".parse::<Shape>().unwrap_err().contains("tree"));
    }
}
