# PortaBackendOption.cmake — AUTO/ON/OFF options for the optional backends and anchors.
# AUTO builds the part when its dependencies are found; ON fails the configure naming
# the missing package; OFF skips it.

function(porta_backend_option NAME DESCRIPTION)
  set(PORTA_${NAME} AUTO CACHE STRING "${DESCRIPTION}: AUTO, ON or OFF")
  set_property(CACHE PORTA_${NAME} PROPERTY STRINGS AUTO ON OFF)
endfunction()

# porta_backend_require(NAME FOUND MISSING_MESSAGE): sets PORTA_HAVE_<NAME>.
function(porta_backend_require NAME FOUND MISSING_MESSAGE)
  if(PORTA_${NAME} STREQUAL "OFF")
    set(PORTA_HAVE_${NAME} OFF PARENT_SCOPE)
  elseif(FOUND)
    set(PORTA_HAVE_${NAME} ON PARENT_SCOPE)
  elseif(PORTA_${NAME} STREQUAL "ON")
    message(FATAL_ERROR "PORTA_${NAME}=ON but ${MISSING_MESSAGE}")
  else()
    message(STATUS "porta: ${NAME} not built: ${MISSING_MESSAGE}")
    set(PORTA_HAVE_${NAME} OFF PARENT_SCOPE)
  endif()
endfunction()
