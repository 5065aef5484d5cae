from hypothesis import Phase, settings

import tests.model.test_state_machine as t

t.CI_SETTINGS = settings(t.CI_SETTINGS, phases=[Phase.explicit, Phase.generate])
t.LONG_SETTINGS = settings(t.LONG_SETTINGS, phases=[Phase.explicit, Phase.generate])
