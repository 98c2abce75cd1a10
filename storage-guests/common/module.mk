# Shared runtime of the storage services: the Env contract, the wire codec,
# node identity and the request/deduplication convention. Protocol code:
# built for the host and, through SG_SRCS, with the guest's freestanding flags.
SG_SRCS += storage-guests/common/codec.cc storage-guests/common/rpc.cc

UNIT_TESTS += common
common_TEST_SRCS := storage-guests/common/codec.cc storage-guests/common/rpc.cc \
                    storage-guests/common/codec_test.cc \
                    storage-guests/common/rpc_test.cc
