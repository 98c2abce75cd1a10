# Shared runtime of the storage services: the Env contract, the wire codec,
# node identity and the request/deduplication convention. Protocol code:
# built for the host and, through SG_SRCS, with the guest's freestanding flags.
COMMON_SRCS := storage-guests/common/codec.cc storage-guests/common/rpc.cc storage-guests/common/transport.cc \
               storage-guests/common/log_framing.cc
SG_SRCS += $(COMMON_SRCS)

UNIT_TESTS += common
common_TEST_SRCS := $(COMMON_SRCS) $(wildcard tests/unit/common/*.cc)
