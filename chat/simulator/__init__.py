"""A local stand-in for an Azure OpenAI resource's Responses API, for development, demos, tests
and benchmarks. See docs/simulator.md for choosing its behaviour per request.
"""

from chat.simulator.app import Simulator, create_app
from chat.simulator.config import SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig", "create_app"]
