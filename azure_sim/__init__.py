"""A local stand-in for an Azure OpenAI resource's Responses API, for development, demos, tests
and benchmarks. See docs/simulator.md for choosing its behaviour per request.
"""

from azure_sim.app import Simulator, create_app
from azure_sim.defaults import SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig", "create_app"]
