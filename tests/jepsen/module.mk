# The Jepsen-style driver (tests/jepsen/README.md): host clients against a
# cluster in VMs, the VMM's control socket as the nemesis, the history
# checked by tests/checker. Recursive (=): the modules it uses sort later.
HOST_PROGRAMS += jepsen
jepsen_SRCS = tests/jepsen/jepsen_main.cc tests/jepsen/nemesis.cc $(CLIENTS_RUNTIME_SRCS) \
              $(COMMON_SRCS) $(RAFT_SRCS) $(CHECKER_SRCS) \
              vmm/control/control_client.cc vmm/control/socket_util.cc
jepsen_LIBS := -pthread

UNIT_TESTS += jepsen
jepsen_TEST_SRCS = tests/jepsen/nemesis_test.cc tests/jepsen/nemesis.cc vmm/net/switch.cc
