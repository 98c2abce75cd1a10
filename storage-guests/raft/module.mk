# Raft (storage-guests/raft/README.md): the pure consensus core, the
# replicated key-value state machine, the server node and the client.
# Protocol code: built for the host and, through SG_SRCS, with the guest
# kernel's freestanding flags.
RAFT_SRCS := storage-guests/raft/log.cc storage-guests/raft/raft.cc \
             storage-guests/raft/wire.cc storage-guests/raft/kv.cc \
             storage-guests/raft/kv_node.cc storage-guests/raft/kv_client.cc
SG_SRCS += $(RAFT_SRCS)
