"""Synthetic remote-sensing world (temporary init during development)."""
from rszoo.data.synth.generate import GENERATOR_VERSION, generate_scene
from rszoo.data.synth.graph import Acquisition, Scene, SceneObject
