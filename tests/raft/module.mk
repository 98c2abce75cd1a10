# Raft tests (tests/raft/README.md): one test per rule of the paper on the
# pure core, 6.824-style scenarios and seeded fault runs in the simulator,
# each ending in a linearizability check; and the Figure 16 benchmark.
UNIT_TESTS += raft
raft_TEST_SRCS := $(RAFT_SRCS) $(SIM_SRCS) $(CHECKER_SRCS) \
                  storage-guests/common/codec.cc storage-guests/common/rpc.cc \
                  tests/raft/raft_paper_test.cc
