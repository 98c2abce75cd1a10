# Host-side helpers of the integration tests (tests/integration/run).
HOST_PROGRAMS += udp-probe
udp-probe_SRCS := tests/integration/udp_probe.cc
