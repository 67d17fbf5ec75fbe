#ifndef HOTPLUG_AGENT_CUDEV_SHIM_H
#define HOTPLUG_AGENT_CUDEV_SHIM_H
#include <libudev.h>
#endif
