# Raft tests (tests/raft/README.md): one test per rule of the paper on the
# pure core, 6.824-style scenarios and seeded fault runs in the simulator,
# each ending in a linearizability check; and the Figure 16 benchmark.
# Recursive (=): tests/sim/module.mk, which sets SIM_SRCS, is read after us.
UNIT_TESTS += raft
raft_TEST_SRCS = $(RAFT_SRCS) $(SIM_SRCS) $(CHECKER_SRCS) \
                  $(COMMON_SRCS) \
                  tests/raft/raft_paper_test.cc tests/raft/raft_scenario_test.cc \
                  tests/raft/raft_linearizability_test.cc tests/raft/raft_kv_test.cc

# Figure 16 of the Raft paper: leader-crash downtime per election timeout
# range (scripts/bench-raft-election draws the table and the chart).
HOST_PROGRAMS += raft-election-bench
raft-election-bench_SRCS = tests/raft/election_bench.cc $(RAFT_SRCS) $(SIM_SRCS) $(COMMON_SRCS)

BENCH_TARGETS += bench-raft-election
.PHONY: bench-raft-election
bench-raft-election: $(BUILD)/raft-election-bench
	scripts/bench-raft-election

# The Raft service across VMs: throughput, latency, failover on virtio-net
# and e1000 (build/bench/raft.md).
BENCH_TARGETS += bench-raft
.PHONY: bench-raft
bench-raft: all
	scripts/bench-raft
