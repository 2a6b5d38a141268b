# mp3c_test(NAME LABEL unit|integration SOURCES ... LIBS ... [SERIAL])
#   A GoogleTest executable whose tests ctest discovers one by one. `unit` tests need no servers; `integration`
#   tests need the servers that scripts/with-servers starts (see docs/testing.md). SERIAL runs them alone, for
#   tests that stop and start the shared servers.
function(mp3c_test name)
    cmake_parse_arguments(T "SERIAL" "LABEL" "SOURCES;LIBS" ${ARGN})
    if(NOT T_LABEL MATCHES "^(unit|integration)$")
        message(FATAL_ERROR "mp3c_test(${name}): LABEL must be unit or integration")
    endif()
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
    target_compile_definitions(${name} PRIVATE MP3C_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}"
                                               MP3C_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    set(props LABELS ${T_LABEL} TIMEOUT 300)
    if(T_SERIAL)
        list(APPEND props RUN_SERIAL TRUE)
    endif()
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${props})
    set_property(GLOBAL APPEND PROPERTY MP3C_TESTS_${T_LABEL} ${name})
endfunction()

# Aggregate targets: `unit-tests` (what the sanitizer build compiles) and `all-tests`.
function(mp3c_finish_test_targets)
    get_property(unit GLOBAL PROPERTY MP3C_TESTS_unit)
    get_property(integration GLOBAL PROPERTY MP3C_TESTS_integration)
    add_custom_target(unit-tests DEPENDS ${unit})
    add_custom_target(all-tests DEPENDS ${unit} ${integration})
endfunction()
