#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// heat_tail.comp with the subgroup sum (HOOD_VK_NO_SUBGROUP=1 selects heat_tail.comp).
#define HOOD_HEAT_TAIL 1
#define HOOD_SUBGROUP_SCORE 1
#include "common.glsl"
#include "heat_score.glsl"
