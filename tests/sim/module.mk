# The deterministic simulator (host only). Suites that run protocols in it
# link SIM_SRCS into their own test binary: raft_TEST_SRCS += $(SIM_SRCS).
SIM_SRCS := tests/sim/sim.cc

UNIT_TESTS += sim
sim_TEST_SRCS := $(SIM_SRCS) tests/sim/sim_test.cc
