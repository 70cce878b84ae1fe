"""The benchmark models of `meshsim bench --simpy`, written the obvious way
in SimPy, for a side-by-side comparison with meshsim on the same model and
the same number of requests.

    python models.py mmc --requests 1000000 --seed 1
    python models.py single-hop --requests 1000000 --seed 1

Prints one JSON object: the mean sojourn time of the requests that finish
after the warm-up, its standard error by batch means, and the wall time of
the simulation itself (interpreter start-up and imports excluded).

mmc: Poisson arrivals at 3000/s to one station of 4 servers, exponential
service with mean 1 ms, FIFO (meshsim's scenarios/validation/mmc.toml).

single-hop: Poisson arrivals at 70,000/s; one client balances over 100
single-server FIFO instances (exponential 1 ms) with P2C Peak-EWMA as
meshsim's core defines it (meshsim's scenarios/bench/single-hop.toml):
two distinct instances drawn uniformly, the lower cost wins (a tie goes to
the first draw); cost = RTT estimate x (in-flight + 1); the estimate decays
towards 0 as exp(-elapsed / 10 s) when read, jumps up to a slower
observation and blends a faster one by the same decay; new instances start
at 30 ms.
"""

import argparse
import json
import math
import random
import time

import simpy


class Stats:
    """Sojourn times of requests finishing at or after `warmup`, in batches."""

    def __init__(self, warmup, batches):
        self.warmup = warmup
        self.samples = []
        self.batches = batches

    def record(self, now, sojourn):
        if now >= self.warmup:
            self.samples.append(sojourn)

    def summary(self):
        n = len(self.samples)
        mean = sum(self.samples) / n
        # Batch means (in completion order) absorb the autocorrelation of
        # successive sojourn times.
        k = self.batches
        size = n // k
        means = [sum(self.samples[i * size:(i + 1) * size]) / size for i in range(k)]
        m = sum(means) / k
        var = sum((x - m) ** 2 for x in means) / (k - 1)
        return n, mean, math.sqrt(var / k)


def mmc(env, rng, n, lam, mu, c, stats):
    server = simpy.Resource(env, capacity=c)

    def customer():
        arrive = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(mu))
        stats.record(env.now, env.now - arrive)

    def source():
        for _ in range(n):
            yield env.timeout(rng.expovariate(lam))
            env.process(customer())

    env.process(source())


def single_hop(env, rng, n, lam, mu, k, stats, decay=10.0, default_rtt=0.030):
    servers = [simpy.Resource(env, capacity=1) for _ in range(k)]
    active = [0] * k
    rtt = [default_rtt] * k
    stamp = [0.0] * k

    def cost(i):
        return rtt[i] * math.exp(-(env.now - stamp[i]) / decay) * (active[i] + 1)

    def pick():
        a = rng.randrange(k)
        b = rng.randrange(k - 1)
        if b >= a:
            b += 1
        return b if cost(b) < cost(a) else a

    def observe(i, seen):
        w = math.exp(-(env.now - stamp[i]) / decay)
        rtt[i] = seen if seen > rtt[i] else rtt[i] * w + seen * (1 - w)
        stamp[i] = env.now

    def request():
        sent = env.now
        i = pick()
        active[i] += 1
        with servers[i].request() as req:
            yield req
            yield env.timeout(rng.expovariate(mu))
        active[i] -= 1
        observe(i, env.now - sent)
        stats.record(env.now, env.now - sent)

    def source():
        for _ in range(n):
            yield env.timeout(rng.expovariate(lam))
            env.process(request())

    env.process(source())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=["mmc", "single-hop"])
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batches", type=int, default=20)
    a = p.parse_args()
    rng = random.Random(a.seed)
    env = simpy.Environment()
    if a.model == "mmc":
        lam, mu = 3000.0, 1000.0
    else:
        lam, mu = 70000.0, 1000.0
    # The same warm-up as meshsim's side: the first tenth of the arrivals' span.
    stats = Stats(warmup=0.1 * a.requests / lam, batches=a.batches)
    if a.model == "mmc":
        mmc(env, rng, a.requests, lam, mu, 4, stats)
    else:
        single_hop(env, rng, a.requests, lam, mu, 100, stats)
    started = time.perf_counter()
    env.run()
    wall = time.perf_counter() - started
    n, mean, se = stats.summary()
    print(json.dumps({
        "model": a.model,
        "requests": a.requests,
        "measured": n,
        "mean_ms": mean * 1e3,
        "se_ms": se * 1e3,
        "wall_s": wall,
        "simpy": simpy.__version__,
    }))


if __name__ == "__main__":
    main()
