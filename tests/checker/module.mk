# History checking (DESIGN.md decision 6): the history model and recorder,
# the linearizability checker, and the check-history tool. See README.md.

CHECKER_SRCS := tests/checker/history.cc tests/checker/linearizability.cc

HOST_PROGRAMS += check-history
check-history_SRCS := tests/checker/check_history_main.cc $(CHECKER_SRCS)

UNIT_TESTS += checker
checker_TEST_SRCS := tests/checker/history_test.cc \
                     tests/checker/linearizability_test.cc \
                     tests/checker/check_history_test.cc \
                     $(CHECKER_SRCS)

# check_history_test runs build/san/check-history next to itself.
$(BUILD)/san/test-checker: | $(BUILD)/san/check-history
