#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// heat_score.glsl with the subgroup sum (HOOD_VK_NO_SUBGROUP=1 selects heat_score.comp).
#define HOOD_SUBGROUP_SCORE 1
#include "common.glsl"
#include "heat_score.glsl"
