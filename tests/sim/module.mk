# The deterministic simulator (host only). Suites that run protocols in it
# link SIM_SRCS into their own test binary: raft_TEST_SRCS += $(SIM_SRCS).
# It needs only storage-guests/common/env.h, a header, so it carries no
# protocol sources: a suite lists those itself, once.
SIM_SRCS := tests/sim/sim.cc

UNIT_TESTS += sim
# The simulator's own tests use the common codec for their toy protocol.
sim_TEST_SRCS := $(SIM_SRCS) tests/sim/sim_test.cc \
                 storage-guests/common/codec.cc storage-guests/common/rpc.cc
