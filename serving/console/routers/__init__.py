"""One APIRouter per console page group, all with :class:`serving.console.web.ConsoleRoute`."""
