"""pflag/cobra-style command line parsing for the stand-ins.

Accepts `--name=value`, `--name value`, `-n value`, `-n=value`, `-nvalue`,
boolean `--name` / `--name=true|false`, and `--` to end flags. Unknown flags
raise FlagError with pflag's wording.
"""


class FlagError(Exception):
    pass


def parse(args, spec, short=None, interspersed=True):
    """spec: {name: "bool"|"str"|"int"|"list"}; short: {"n": "namespace"}.
    Returns (values, positionals, seen_names)."""
    short = short or {}
    values = {}
    pos = []
    seen = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            if name not in spec:
                raise FlagError("unknown flag: --%s" % name)
        elif a.startswith("-") and len(a) > 1 and a != "-":
            s = a[1]
            if s not in short:
                raise FlagError("unknown shorthand flag: '%s' in %s" % (s, a))
            name = short[s]
            rest = a[2:]
            eq = ""
            val = ""
            if rest.startswith("="):
                eq, val = "=", rest[1:]
            elif rest:
                if spec[name] == "bool":
                    raise FlagError("unknown shorthand flag: '%s' in %s" % (rest[0], a))
                eq, val = "=", rest
        else:
            pos.append(a)
            if not interspersed:
                pos.extend(args[i + 1:])
                break
            i += 1
            continue
        kind = spec[name]
        if kind == "bool":
            if eq:
                if val.lower() not in ("true", "false", "1", "0", "t", "f"):
                    raise FlagError('invalid argument "%s" for "--%s" flag: strconv.ParseBool: parsing "%s": invalid syntax' % (val, name, val))
                v = val.lower() in ("true", "1", "t")
            else:
                v = True
        else:
            if not eq:
                if i + 1 >= len(args):
                    raise FlagError("flag needs an argument: --%s" % name)
                i += 1
                val = args[i]
            v = val
            if kind == "int":
                try:
                    v = int(val)
                except ValueError:
                    raise FlagError('invalid argument "%s" for "--%s" flag: strconv.ParseInt: parsing "%s": invalid syntax' % (val, name, val))
            elif kind == "list":
                v = values.get(name, []) + [x for x in val.split(",") if x != ""]
        values[name] = v
        seen.append(name)
        i += 1
    return values, pos, seen
