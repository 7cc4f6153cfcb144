"""Realistic blocks, one per device type, shared by the daemon and web tests.

MPPT and inverter follow the label sets of the genuine recordings and of reference §4; BMV_MAIN is the first
main block of tests/data/captures/bvm702.dump with T and AR changed to exercise '---' and a bitmask.
"""

MPPT = {"PID": "0xA04A", "FW": "159", "SER#": "HQ1328Y6TF6", "V": "26180", "I": "4200", "VPV": "61230",
        "PPV": "112", "CS": "3", "MPPT": "2", "OR": "0x00000000", "ERR": "0", "LOAD": "ON", "IL": "0",
        "H19": "1234", "H20": "12", "H21": "150", "H22": "20", "H23": "180", "HSDS": "12"}

BMV_MAIN = {"PID": "0x203", "V": "12065", "I": "-7625", "P": "-92", "CE": "-65473", "SOC": "839", "TTG": "-1",
            "T": "---", "Alarm": "ON", "Relay": "OFF", "AR": "5", "BMV": "700", "FW": "0308"}

BMV_HISTORY = {"H1": "-149322", "H2": "-82854", "H3": "0", "H4": "3", "H5": "0", "H6": "-5526294", "H7": "11733",
               "H8": "16161", "H9": "368003", "H10": "26", "H11": "0", "H12": "0", "H17": "6843", "H18": "8527"}

INVERTER = {"PID": "0xA202", "FW": "0110", "SER#": "HQ1234ABCDE", "MODE": "2", "CS": "9", "AR": "0", "WARN": "0",
            "V": "25120", "AC_OUT_V": "23001", "AC_OUT_I": "8", "AC_OUT_S": "184"}
