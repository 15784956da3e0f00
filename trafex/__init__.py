"""trafex: react to individual traffic flows with BGP."""

__version__ = "0.1.0"
