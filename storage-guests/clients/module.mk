# Host-side clients of the services (storage-guests/clients/README.md):
# a real-time UDP runtime for client nodes, and the command-line clients.
# Recursive (=) because the service modules sort after this one.
CLIENTS_RUNTIME_SRCS := storage-guests/clients/udp_runtime.cc

HOST_PROGRAMS += kvctl
kvctl_SRCS = storage-guests/clients/kvctl.cc $(CLIENTS_RUNTIME_SRCS) $(COMMON_SRCS) $(RAFT_SRCS)

UNIT_TESTS += clients
clients_TEST_SRCS = $(wildcard tests/unit/clients/*.cc) $(CLIENTS_RUNTIME_SRCS) $(COMMON_SRCS) $(RAFT_SRCS)
