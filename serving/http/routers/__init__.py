"""One APIRouter per resource; each route is one call into QAService (STYLE habit 7)."""
